#!/bin/sh
# Finding 3: a body cut by Kestrel's minimum data rate (client sees 408) and a body over MaxRequestBodyBytes (client sees 413)
# are each counted as code="200" in http_requests_received_total for POST /v1/predict.
cd "$(dirname "$0")"
snap(){ curl -s http://127.0.0.1:${HAR_PORT:-5580}/metrics | grep -E '^http_requests_received_total\{code="[0-9]+",method="POST",endpoint="/v1/predict"\}' | sort; }
snap > m0; python3 edges.py cl-larger-stall-small | cut -c1-120; snap > m1; diff m0 m1
python3 edges.py cl-5mib-headers-only | cut -c1-100; snap > m2; diff m1 m2
