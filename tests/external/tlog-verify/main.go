// Command tlog-verify checks Har.Audit artefacts with an implementation that is not Har's own: Go's reference code
// for signed notes and transparency logs (golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog), where the
// C2SP signed-note and tlog-checkpoint formats come from.
//
// Usage:
//
//	tlog-verify -vkey <verifier key, or a file holding it> [-log <log folder>]
//	            [-checkpoint <note file>]... [-bundle <proof bundle>]... [-consistency <consistency proof>]...
//
// What it checks:
//
//   - the verifier key with note.NewVerifier (and the key ID recomputed: the first 4 bytes of
//     SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key));
//   - every checkpoint (each -checkpoint, the log's own "checkpoint" file, each bundle's) with note.Open, then its
//     text as a C2SP tlog-checkpoint: origin, tree size and base64 root lines, non-empty extension lines; size and
//     root with tlog.ParseTree's rules, the root in canonical base64, an empty tree's root SHA-256 of nothing
//     (RFC 6962; tlog itself uses 32 zero bytes there);
//   - a log folder (a Har file log or an export of one: "entries.log", "log.json", "checkpoint"): the frames and their
//     CRC-32C, each entry's index and hash chain, the leaf hashes with tlog.RecordHash, the tree with
//     tlog.StoredHashes and tlog.TreeHash, whose root at every checkpoint's size must be the signed root;
//   - proof bundles (har-audit-proof/v1): the checkpoint as above, the leaf hash SHA-256(0x00 ‖ entry) with
//     tlog.RecordHash, the entry's own index, the inclusion path with tlog.CheckRecord (and, with -log, the path
//     equal to tlog.ProveRecord's and the entry equal to the log's);
//   - consistency proofs (the JSON of Har's ConsistencyProof.ToJson) with tlog.CheckTree, each root bound to a
//     verified checkpoint of that size or, with -log, to the tree the signed log gives (and the path equal to
//     tlog.ProveTree's).
//
// Every check prints one line ("ok" or "FAIL" and what), "note" lines say what the specifications only recommend,
// and a last line sums up ("all N checks passed" or "M of N checks failed"). Exit status: 0
// when every check passed, 1 when one failed, 2 for a usage error. It builds in GOPATH mode with the standard
// library and golang.org/x/mod only (Debian: golang-go and golang-golang-x-mod-dev).
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

var passed, failed int

func ok(format string, args ...interface{}) {
	passed++
	fmt.Printf("ok   "+format+"\n", args...)
}

func fail(format string, args ...interface{}) {
	failed++
	fmt.Printf("FAIL "+format+"\n", args...)
}

func remark(format string, args ...interface{}) {
	fmt.Printf("note "+format+"\n", args...)
}

// checkpoint is a checkpoint whose signature verified.
type checkpoint struct {
	label  string
	origin string
	size   int64
	root   tlog.Hash
}

var (
	verifier note.Verifier
	signed   []checkpoint
)

func main() {
	var vkeyArg, logDir string
	var checkpoints, bundles, consistencies listFlag
	flag.StringVar(&vkeyArg, "vkey", "", "the trusted verifier key <name>+<key id>+<base64 key>, or a file holding it (required)")
	flag.StringVar(&logDir, "log", "", "a Har audit log folder or export (entries.log, log.json, checkpoint)")
	flag.Var(&checkpoints, "checkpoint", "a signed checkpoint note file (repeatable)")
	flag.Var(&bundles, "bundle", "a proof bundle JSON file, har-audit-proof/v1 (repeatable)")
	flag.Var(&consistencies, "consistency", "a consistency proof JSON file (repeatable)")
	flag.Parse()
	if vkeyArg == "" || flag.NArg() != 0 || (logDir == "" && len(checkpoints) == 0 && len(bundles) == 0 && len(consistencies) == 0) {
		fmt.Fprintln(os.Stderr, "usage: tlog-verify -vkey <key or file> [-log <folder>] [-checkpoint <file>]... [-bundle <file>]... [-consistency <file>]...")
		os.Exit(2)
	}

	if !loadVerifier(vkeyArg) {
		finish()
	}

	for _, f := range checkpoints {
		if msg, err := os.ReadFile(f); err != nil {
			fail("checkpoint %s: %v", f, err)
		} else {
			openCheckpoint(f, msg)
		}
	}

	var lg *logTree
	if logDir != "" {
		lg = verifyLog(logDir)
	}

	for _, f := range bundles {
		verifyBundle(f, lg)
	}

	for _, f := range consistencies {
		verifyConsistency(f, lg)
	}

	finish()
}

func finish() {
	if failed > 0 || passed == 0 {
		fmt.Printf("tlog-verify: %d of %d checks failed\n", failed, passed+failed)
		os.Exit(1)
	}
	fmt.Printf("tlog-verify: all %d checks passed\n", passed)
	os.Exit(0)
}

func loadVerifier(arg string) bool {
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = string(b)
	}
	text = strings.TrimSpace(text)
	v, err := note.NewVerifier(text)
	if err != nil {
		fail("verifier key %q: note.NewVerifier: %v", text, err)
		return false
	}

	// note.NewVerifier checks the key ID already; recompute it here too, as the spec states it.
	parts := strings.SplitN(text, "+", 3)
	key, _ := base64.StdEncoding.DecodeString(parts[2])
	sum := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
	if id := binary.BigEndian.Uint32(sum[:4]); id != v.KeyHash() || len(key) != 33 || key[0] != 0x01 {
		fail("verifier key %s: key ID %08x, expected SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4] = %08x of an Ed25519 key", text, v.KeyHash(), id)
		return false
	}

	verifier = v
	ok("verifier key %s+%08x: Ed25519, key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]", v.Name(), v.KeyHash())
	return true
}

// openCheckpoint verifies a signed note with note.Open and parses its text as a C2SP tlog-checkpoint.
func openCheckpoint(label string, msg []byte) (checkpoint, bool) {
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			names := []string{}
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			fail("checkpoint %s: note.Open: %v (signed by %s; trusted: %s+%08x)", label, err, strings.Join(names, ", "), verifier.Name(), verifier.KeyHash())
		} else {
			fail("checkpoint %s: note.Open: %v", label, err)
		}
		return checkpoint{}, false
	}

	c, problem := parseCheckpoint(n.Text)
	if problem != "" {
		fail("checkpoint %s: signature verifies, but the text is not a C2SP checkpoint: %s", label, problem)
		return checkpoint{}, false
	}

	c.label = label
	if c.origin != verifier.Name() {
		remark("checkpoint %s: key name %q differs from the origin %q (tlog-checkpoint: the key name SHOULD match the origin)", label, verifier.Name(), c.origin)
	}
	if strings.IndexFunc(c.origin, unicode.IsSpace) >= 0 || strings.Contains(c.origin, "+") {
		remark("checkpoint %s: origin %q contains a Unicode space or '+' (tlog-checkpoint: it SHOULD not)", label, c.origin)
	}
	ok("checkpoint %s: note.Open verified %s+%08x; origin %q, size %d, root %s", label, verifier.Name(), verifier.KeyHash(), c.origin, c.size, c.root)
	signed = append(signed, c)
	return c, true
}

// parseCheckpoint parses the text of a C2SP tlog-checkpoint: origin, size, base64 root, optional extension lines.
func parseCheckpoint(text string) (checkpoint, string) {
	if !strings.HasSuffix(text, "\n") {
		return checkpoint{}, "the text does not end with a newline"
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, fmt.Sprintf("%d lines, expected at least 3 (origin, tree size, root hash)", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return checkpoint{}, fmt.Sprintf("line %d is empty (origin and extension lines must be non-empty)", i+1)
		}
	}

	// The size and root lines follow the go.sum tree note's rules: tlog.ParseTree checks them
	// (canonical decimal, base64 of 32 bytes) once the origin line is replaced by its fixed first line.
	tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + lines[1] + "\n" + lines[2] + "\n"))
	if err != nil {
		return checkpoint{}, fmt.Sprintf("tree size %q / root hash %q: tlog.ParseTree: %v", lines[1], lines[2], err)
	}
	if base64.StdEncoding.EncodeToString(tree.Hash[:]) != lines[2] {
		return checkpoint{}, fmt.Sprintf("root hash %q is not in canonical base64", lines[2])
	}
	if tree.N == 0 && tree.Hash != emptyRoot() {
		return checkpoint{}, fmt.Sprintf("the empty tree's root is %s, expected SHA-256 of nothing (RFC 6962)", tree.Hash)
	}
	return checkpoint{origin: lines[0], size: tree.N, root: tree.Hash}, ""
}

func emptyRoot() tlog.Hash { return tlog.Hash(sha256.Sum256(nil)) }

// logTree is a log read from its folder, with the hashes tlog stores for it.
type logTree struct {
	dir     string
	origin  string
	entries [][]byte
	hashes  []tlog.Hash
	trusted bool // its tree matched a verified checkpoint
}

func (l *logTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// root is the RFC 6962 root at a size; tlog.TreeHash gives 32 zero bytes for the empty tree, RFC 6962 SHA-256 of nothing.
func (l *logTree) root(size int64) (tlog.Hash, error) {
	if size == 0 {
		return emptyRoot(), nil
	}
	return tlog.TreeHash(size, l)
}

func verifyLog(dir string) *logTree {
	l := &logTree{dir: dir}
	meta, err := os.ReadFile(filepath.Join(dir, "log.json"))
	var m struct {
		Origin string `json:"origin"`
	}
	if err != nil || json.Unmarshal(meta, &m) != nil || m.Origin == "" {
		fail("log %s: log.json names no origin (%v)", dir, err)
		return nil
	}
	l.origin = m.Origin

	seg, err := os.ReadFile(filepath.Join(dir, "entries.log"))
	if err != nil {
		fail("log %s: %v", dir, err)
		return nil
	}
	if !bytes.HasPrefix(seg, []byte("HARLOG01")) {
		fail("log %s: entries.log does not start with HARLOG01", dir)
		return nil
	}

	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	prev := tlog.Hash{}
	for pos := 8; pos < len(seg); {
		i := int64(len(l.entries))
		if len(seg)-pos < 8 {
			fail("log %s: entry %d at offset %d: %d bytes left, less than a frame header", dir, i, pos, len(seg)-pos)
			return nil
		}
		length := int(binary.LittleEndian.Uint32(seg[pos:]))
		crc := binary.LittleEndian.Uint32(seg[pos+4:])
		if length <= 0 || length > len(seg)-pos-8 {
			fail("log %s: entry %d at offset %d: frame length %d exceeds the segment", dir, i, pos, length)
			return nil
		}
		payload := seg[pos+8 : pos+8+length]
		if got := crc32.Update(crc32.Checksum(seg[pos:pos+4], castagnoli), castagnoli, payload); got != crc {
			fail("log %s: entry %d at offset %d: CRC-32C %08x, the frame says %08x", dir, i, pos, got, crc)
			return nil
		}

		var e struct {
			Index *int64  `json:"index"`
			Prev  *string `json:"prev"`
		}
		if err := json.Unmarshal(payload, &e); err != nil || e.Index == nil || e.Prev == nil {
			fail("log %s: entry %d at offset %d is not a Har entry {index, kind, prev, record} (%v)", dir, i, pos, err)
			return nil
		}
		if *e.Index != i {
			fail("log %s: entry %d at offset %d says index %d", dir, i, pos, *e.Index)
			return nil
		}
		if *e.Prev != hex.EncodeToString(prev[:]) {
			fail("log %s: entry %d: prev %s is not the leaf hash of entry %d (%s)", dir, i, *e.Prev, i-1, hex.EncodeToString(prev[:]))
			return nil
		}

		stored, err := tlog.StoredHashes(i, payload, l)
		if err != nil {
			fail("log %s: entry %d: tlog.StoredHashes: %v", dir, i, err)
			return nil
		}
		l.hashes = append(l.hashes, stored...)
		l.entries = append(l.entries, payload)
		prev = tlog.RecordHash(payload)
		pos += 8 + length
	}
	ok("log %s: origin %q, %d entries: frames, CRC-32C, indexes and hash chain; leaf hashes tlog.RecordHash = SHA-256(0x00 ‖ entry)", dir, l.origin, len(l.entries))

	cps := []checkpoint{}
	if msg, err := os.ReadFile(filepath.Join(dir, "checkpoint")); err == nil {
		if c, good := openCheckpoint(filepath.Join(dir, "checkpoint"), msg); good {
			cps = append(cps, c)
		}
	} else {
		remark("log %s has no checkpoint file", dir)
	}
	if vk, err := os.ReadFile(filepath.Join(dir, "checkpoint.vkey")); err == nil {
		if nv, err := note.NewVerifier(strings.TrimSpace(string(vk))); err != nil {
			fail("log %s: checkpoint.vkey: note.NewVerifier: %v", dir, err)
		} else if nv.Name() != verifier.Name() || nv.KeyHash() != verifier.KeyHash() {
			remark("log %s: checkpoint.vkey names %s+%08x, not the pinned key", dir, nv.Name(), nv.KeyHash())
		}
	}

	for _, c := range signed {
		if c.origin != l.origin {
			if len(cps) > 0 && c == cps[0] {
				fail("log %s: its checkpoint names origin %q, the log is %q", dir, c.origin, l.origin)
			}
			continue
		}
		if c.size > int64(len(l.entries)) {
			fail("log %s: checkpoint %s commits to %d entries, the log holds %d", dir, c.label, c.size, len(l.entries))
			continue
		}
		r, err := l.root(c.size)
		if err != nil {
			fail("log %s: tlog.TreeHash(%d): %v", dir, c.size, err)
		} else if r != c.root {
			fail("log %s: the tree root at size %d (tlog.TreeHash) is %s, checkpoint %s signs %s", dir, c.size, r, c.label, c.root)
		} else {
			l.trusted = true
			ok("log %s: the tree root at size %d (tlog.TreeHash) is the root signed by checkpoint %s", dir, c.size, c.label)
		}
	}
	if !l.trusted {
		fail("log %s: no verified checkpoint of origin %q signs its tree", dir, l.origin)
	}
	return l
}

func readJSON(file string, v interface{}) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		fail("%s: %v", file, err)
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		fail("%s: not JSON of the expected shape: %v", file, err)
		return false
	}
	return true
}

func hashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("hash %d (%q) is not 64 hex digits", i, s)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func verifyBundle(file string, lg *logTree) {
	var b struct {
		Format     string          `json:"format"`
		LeafIndex  *int64          `json:"leaf_index"`
		TreeSize   *int64          `json:"tree_size"`
		LeafHash   string          `json:"leaf_hash"`
		RootHash   string          `json:"root_hash"`
		Path       []string        `json:"inclusion_path"`
		Entry      string          `json:"entry"`
		EntryJSON  json.RawMessage `json:"entry_json"`
		Checkpoint string          `json:"checkpoint"`
	}
	if !readJSON(file, &b) {
		return
	}
	if b.Format != "har-audit-proof/v1" || b.LeafIndex == nil || b.Checkpoint == "" || b.Entry == "" {
		fail("bundle %s: not a har-audit-proof/v1 bundle (format, leaf_index, entry, checkpoint)", file)
		return
	}
	c, good := openCheckpoint(file+" (its checkpoint)", []byte(b.Checkpoint))
	if !good {
		fail("bundle %s: its checkpoint does not verify", file)
		return
	}
	entry, err := base64.StdEncoding.DecodeString(b.Entry)
	if err != nil {
		fail("bundle %s: entry is not base64: %v", file, err)
		return
	}
	leaf := tlog.RecordHash(entry)
	if b.LeafHash != "" && b.LeafHash != hex.EncodeToString(leaf[:]) {
		fail("bundle %s: leaf_hash %s, but SHA-256(0x00 ‖ entry) is %s", file, b.LeafHash, leaf)
		return
	}
	if b.TreeSize != nil && *b.TreeSize != c.size {
		fail("bundle %s: tree_size %d, the signed checkpoint says %d", file, *b.TreeSize, c.size)
		return
	}
	if b.RootHash != "" && b.RootHash != hex.EncodeToString(c.root[:]) {
		fail("bundle %s: root_hash %s is not the signed root", file, b.RootHash)
		return
	}
	d := json.NewDecoder(bytes.NewReader(entry))
	d.UseNumber()
	var e map[string]interface{}
	if err := d.Decode(&e); err != nil {
		fail("bundle %s: the entry is not JSON: %v", file, err)
		return
	}
	if idx, _ := e["index"].(json.Number); idx.String() != strconv.FormatInt(*b.LeafIndex, 10) {
		fail("bundle %s: the entry says index %v, the proof is for %d", file, e["index"], *b.LeafIndex)
		return
	}
	if len(b.EntryJSON) > 0 {
		d := json.NewDecoder(bytes.NewReader(b.EntryJSON))
		d.UseNumber()
		var readable interface{}
		if err := d.Decode(&readable); err != nil || !reflect.DeepEqual(readable, interface{}(e)) {
			fail("bundle %s: entry_json is not the proven entry", file)
			return
		}
	}
	path, err := hashes(b.Path)
	if err != nil {
		fail("bundle %s: inclusion_path: %v", file, err)
		return
	}
	if err := tlog.CheckRecord(path, c.size, c.root, *b.LeafIndex, leaf); err != nil {
		fail("bundle %s: tlog.CheckRecord(entry %d, size %d): %v", file, *b.LeafIndex, c.size, err)
		return
	}
	ok("bundle %s: tlog.CheckRecord: entry %d (leaf %s) is in the signed tree of size %d (%d path hashes)", file, *b.LeafIndex, leaf, c.size, len(path))

	if lg != nil && lg.origin == c.origin && c.size <= int64(len(lg.entries)) {
		want, err := tlog.ProveRecord(c.size, *b.LeafIndex, lg)
		if err != nil || !sameHashes(want, path) || !bytes.Equal(lg.entries[*b.LeafIndex], entry) {
			fail("bundle %s: differs from the log: tlog.ProveRecord(%d, %d) = %v (err %v), entry equal: %v", file, c.size, *b.LeafIndex, want, err, bytes.Equal(lg.entries[*b.LeafIndex], entry))
			return
		}
		ok("bundle %s: the entry is the log's and the path equals tlog.ProveRecord(%d, %d)", file, c.size, *b.LeafIndex)
	}
}

func sameHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// bound tells whether a root at a size is one a verified checkpoint signs, or that the signed log gives.
func bound(lg *logTree, size int64, root tlog.Hash) string {
	for _, c := range signed {
		if c.size == size && c.root == root {
			return "checkpoint " + c.label
		}
	}
	if lg != nil && lg.trusted && size <= int64(len(lg.entries)) {
		if r, err := lg.root(size); err == nil && r == root {
			return "the verified log"
		}
	}
	return ""
}

func verifyConsistency(file string, lg *logTree) {
	var p struct {
		FromSize *int64   `json:"from_size"`
		ToSize   *int64   `json:"to_size"`
		FromRoot string   `json:"from_root"`
		ToRoot   string   `json:"to_root"`
		Path     []string `json:"path"`
	}
	if !readJSON(file, &p) {
		return
	}
	if p.FromSize == nil || p.ToSize == nil {
		fail("consistency %s: from_size and to_size are required", file)
		return
	}
	roots, err := hashes([]string{p.FromRoot, p.ToRoot})
	if err != nil {
		fail("consistency %s: roots: %v", file, err)
		return
	}
	path, err := hashes(p.Path)
	if err != nil {
		fail("consistency %s: path: %v", file, err)
		return
	}
	from, to := *p.FromSize, *p.ToSize
	if err := tlog.CheckTree(path, to, roots[1], from, roots[0]); err != nil {
		fail("consistency %s: tlog.CheckTree(size %d -> %d): %v", file, from, to, err)
		return
	}
	fromBy, toBy := bound(lg, from, roots[0]), bound(lg, to, roots[1])
	if fromBy == "" || toBy == "" {
		unbound := from
		if fromBy != "" {
			unbound = to
		}
		fail("consistency %s: tlog.CheckTree verifies, but the root at size %d is signed by no checkpoint given (and no verified log gives it)", file, unbound)
		return
	}
	ok("consistency %s: tlog.CheckTree: size %d (root signed by %s) is a prefix of size %d (root signed by %s), %d proof hashes", file, from, fromBy, to, toBy, len(path))

	if lg != nil && lg.trusted && to <= int64(len(lg.entries)) {
		want, err := tlog.ProveTree(to, from, lg)
		if err != nil || !sameHashes(want, path) {
			fail("consistency %s: the path differs from tlog.ProveTree(%d, %d) = %v (err %v)", file, to, from, want, err)
			return
		}
		ok("consistency %s: the path equals tlog.ProveTree(%d, %d)", file, to, from)
	}
}
