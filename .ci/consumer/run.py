#!/usr/bin/env python3
"""Package-consumer test: uses the packed Har.* .nupkg files the way a new user does.

Creates fresh console projects (outside the repository's MSBuild settings) that reference the packed packages
through a local feed (Har.* only from there, everything else from the public feed), restores them once into one
package cache, builds them in one MSBuild run, then runs them. Checks, one test each:

  readme:<package>#<n>   every ```csharp block of src/<package>/README.md (and of the repository's README.md,
                         against all four packages) compiles and runs as a top-level
                         program (one block = one Program.cs) in a working directory holding the committed models
                         under models/. A block whose fence's info string says illustrative (```csharp illustrative)
                         is only shown and is skipped here (not an HTML comment before the fence: nuget.org's
                         README support lists no inline HTML, so it may show as text). The project references the
                         package itself plus every package the README tells the reader to add
                         (`dotnet add package <Id> [--version <v>]`).
  install:<package>      the `dotnet add package` lines of the README's Install section, run as written (the text after
                         a # dropped) in a fresh console project with no package: a line that fails as written (a
                         prerelease added without --prerelease) fails here, as it would for a new user.
  alone:<package>        a console app referencing only that package compiles and runs `new ServiceCollection()`
                         and the package's AddHar* (Action<options> overload) with only
                         `using Microsoft.Extensions.DependencyInjection;`, and its package graph holds no
                         Microsoft.Extensions.* package older than 10.x.
  host:all               a generic host with all four AddHar* calls starts, resolves every service those calls
                         registered (keyed ones by key) and stops (.ci/consumer/HostCheck/Program.cs).
  sourcelink:<package>   the PDB in the .snupkg carries SourceLink JSON mapping every source document to the
                         repository URL at the commit built, or embeds it; document paths are deterministic (/_/);
                         the .nuspec names the same repository and commit (.ci/consumer/PdbCheck).
  xmldoc:<package>       the XML documentation in the .nupkg (lib/net10.0/<package>.xml) documents only types and
                         members a consumer can see: a console app referencing the packages lists them by reflection
                         on the package's assembly and fails on any other <member> (an internal or private one), or on
                         a public type without a doc (.ci/consumer/DocCheck).

Usage: run.py <packages-dir> <work-dir> [<repository root>, default: this script's]; e.g. after
`dotnet pack Har.sln -c Release -o /tmp/har-packages`: `python3 .ci/consumer/run.py /tmp/har-packages /tmp/har-consumer`. Prints one "PASS|FAIL <test>" line per test and writes
"<passed> <failed>" to <work-dir>/counts. The package cache is $HAR_CONSUMER_PACKAGES (default
~/.nuget/har-consumer-packages), reused between runs; its Har.* entries are deleted first so a stale package is
never used. Each commit packs a version of its own (README, "Versions"), so a reused packages folder may hold
several: the highest version of each package is the one tested.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", ".."))
# HAR_CONSUMER_ONLY=<prefix> runs only the checks whose name starts with it (readme:Har.Drift, host, alone, ...).
ONLY = os.environ.get("HAR_CONSUMER_ONLY", "")




def wanted(name):
    return name.startswith(ONLY)


PACKAGES = ["Har.Inference", "Har.Drift", "Har.Audit", "Har.Deployment"]
RUN_TIMEOUT = int(os.environ.get("HAR_CONSUMER_RUN_TIMEOUT", "120"))  # seconds per program run; blocks must end
BUILD_TIMEOUT = 15 * 60    # restore or build of all consumer projects together
BUDGET = 30 * 60           # the whole consumer test; programs not started by then fail as not run

results = []               # (name, ok, detail)


def record(name, ok, detail=""):
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)


def sh(args, cwd, timeout, env=None, log=None):
    """Runs a process; returns (exit code or None on timeout, combined output)."""
    try:
        p = subprocess.run(args, cwd=cwd, env=env, timeout=timeout, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace")
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), None
    if log:
        with open(log, "w", encoding="utf-8") as f:
            f.write(out)
    return rc, out


def central_versions():
    """Versions from the repository's Directory.Packages.props (used for packages a README names without one)."""
    tree = ET.parse(os.path.join(ROOT, "Directory.Packages.props"))
    return {e.get("Include"): e.get("Version") for e in tree.iter("PackageVersion")}


def csharp_blocks(readme):
    """(line number, code, illustrative) for every ```csharp (or ```cs / ```c#) block of a README."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w#+-]*)(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start, j = i, i + 1
        while j < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$", lines[j]):
            j += 1
        if lang in ("csharp", "cs", "c#"):
            illustrative = "illustrative" in m.group(4).split()
            code = "\n".join(l[len(indent):] if l.startswith(indent) else l for l in lines[start + 1:j])
            blocks.append((start + 1, code + "\n", illustrative))
        i = j + 1
    return blocks


def install_commands(readme):
    """The `dotnet add package …` lines inside the README's fenced blocks, as written (a trailing # comment dropped)."""
    commands, fenced = [], False
    for line in open(readme, encoding="utf-8").read().split("\n"):
        if re.match(r"^\s*(`{3,}|~{3,})", line):
            fenced = not fenced
            continue
        command = line.split("#", 1)[0].strip()
        if fenced and command.startswith("dotnet add package "):
            commands.append(command)
    return commands


def readme_packages(readme):
    """Packages the README tells the reader to add: `dotnet add package <Id> [--version <v>]`."""
    text = open(readme, encoding="utf-8").read()
    found = {}
    for m in re.finditer(r"dotnet add package\s+([A-Za-z0-9_.-]+)(?:[^\n`]*?(?:--version|-v)\s+([^\s`]+))?", text):
        found[m.group(1)] = m.group(2)
    return found


def semver_key(version):
    """SemVer 2.0 precedence (NuGet's, prerelease labels compared case-insensitively): 0.1.0-alpha.0.9 sorts below
    0.1.0-alpha.0.10, which sorts below 0.1.0."""
    core, _, pre = version.partition("-")
    numbers = tuple(int(x) for x in core.split("."))
    if not pre:
        return (numbers, 1, ())
    return (numbers, 0, tuple((0, int(x), "") if x.isdigit() else (1, 0, x.lower()) for x in pre.split(".")))


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def project(refs):
    items = "\n".join(f'    <PackageReference Include="{i}" Version="{v}" />' for i, v in sorted(refs.items()))
    # What `dotnet new console` writes, plus the package references.
    return f"""<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
{items}
  </ItemGroup>
</Project>
"""


def main():
    packages_dir, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    t0 = time.monotonic()
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    har_versions = {}
    for p in PACKAGES:
        found = []
        for f in os.listdir(packages_dir):
            m = re.match(re.escape(p) + r"\.(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.nupkg$", f)
            if m:
                found.append(m.group(1))
        if found:
            found.sort(key=semver_key)
            har_versions[p] = found[-1]
            if len(found) > 1:
                print(f"{p}: testing {found[-1]}, the highest of {len(found)} versions in the packages folder", flush=True)
    missing = [p for p in PACKAGES if p not in har_versions]
    if missing:
        for p in missing:
            record(f"pack:{p}", False, f"no {p}.<version>.nupkg in the packages folder")
        return finish(work, t0)
    central = central_versions()

    # The consumer folder stands alone: no repository Directory.Build.*, central versions or .editorconfig.
    write(os.path.join(work, "Directory.Build.props"), "<Project />\n")
    write(os.path.join(work, "Directory.Build.targets"), "<Project />\n")
    write(os.path.join(work, "Directory.Packages.props"), "<Project />\n")
    write(os.path.join(work, ".editorconfig"), "root = true\n")
    write(os.path.join(work, "nuget.config"), f"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="har-local" value="{packages_dir}" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="har-local"><package pattern="Har.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
""")

    cache = os.environ.get("HAR_CONSUMER_PACKAGES") or os.path.expanduser("~/.nuget/har-consumer-packages")
    os.makedirs(cache, exist_ok=True)
    for p in PACKAGES:
        shutil.rmtree(os.path.join(cache, p.lower()), ignore_errors=True)
    env = dict(os.environ, NUGET_PACKAGES=cache, DOTNET_CLI_TELEMETRY_OPTOUT="1", DOTNET_NOLOGO="1")

    # 0. The Install commands, as a new user types them.
    for p in [p for p in PACKAGES if wanted(f"install:{p}")]:
        readme = os.path.join(ROOT, "src", p, "README.md")
        commands = install_commands(readme)
        if not any(c.split()[3] == p for c in commands):
            record(f"install:{p}", False, f"src/{p}/README.md has no `dotnet add package {p}` line in a code block")
            continue
        d = os.path.join(work, "install", p.replace(".", ""))
        write(os.path.join(d, p.replace(".", "") + ".csproj"), project({}))
        failed = None
        for c in commands:
            t = time.monotonic()
            rc, out = sh(c.split(), d, BUILD_TIMEOUT, env)
            print(f"     {c}: exit {rc}, {time.monotonic() - t:.0f} s", flush=True)
            if rc != 0:
                failed = f"`{c}` failed: " + " | ".join(l.strip() for l in out.strip().splitlines() if "error" in l.lower())[:600]
                break
        record(f"install:{p}", failed is None, failed or "")

    projects = []   # (test name, project dir, assembly name, kind, extra)
    # 1. README blocks.
    # The repository's README shows package code too; its blocks run against all four packages.
    readmes = [(p, os.path.join("src", p, "README.md"), [p]) for p in PACKAGES] + [("README.md", "README.md", PACKAGES)]
    for p, rel, base in readmes:
        readme = os.path.join(ROOT, rel)
        if not (wanted(f"readme:{p}") or ONLY.startswith(f"readme:{p}")):
            continue
        if not os.path.exists(readme):
            record(f"readme:{p}", False, f"{rel} not found")
            continue
        refs = {b: har_versions[b] for b in base}
        for pid, ver in readme_packages(readme).items():
            if pid in har_versions:
                refs[pid] = har_versions[pid]
            else:
                refs[pid] = ver or central.get(pid) or "*"
        n = 0
        for line, code, illustrative in csharp_blocks(readme):
            n += 1
            name = f"readme:{p}#{n}"
            if not wanted(name):
                continue
            if illustrative:
                print(f"SKIP {name} (README line {line}: marked ```csharp illustrative)")
                continue
            asm = f"{p.replace('.', '').replace('READMEmd', 'Root')}Readme{n}"
            d = os.path.join(work, "readme", asm)
            write(os.path.join(d, asm + ".csproj"), project(refs))
            # #line: the compiler reports errors at the README's own lines.
            write(os.path.join(d, "Program.cs"), f"// {rel}, the C# block at line {line}\n#line {line + 1} \"{readme}\"\n" + code)
            projects.append((name, d, asm, "readme", line))
    # 2. Each package alone.
    for p in [p for p in PACKAGES if wanted(f"alone:{p}")]:
        asm = f"{p.replace('.', '')}Alone"
        d = os.path.join(work, "alone", asm)
        write(os.path.join(d, asm + ".csproj"), project({p: har_versions[p]}))
        add = "AddHar" + p.split(".")[1]
        write(os.path.join(d, "Program.cs"), f"""using Microsoft.Extensions.DependencyInjection;

// A console app that references only {p}: the DI types come from one Microsoft.Extensions 10.x graph, and the
// package's entry point is found with the usual using (namespace Microsoft.Extensions.DependencyInjection).
var services = new ServiceCollection();
services.{add}(_ => {{ }});
if (services.Count == 0)
{{
    Console.Error.WriteLine("{add} registered no service");
    return 1;
}}

Console.WriteLine($"ServiceCollection from {{typeof(ServiceCollection).Assembly.GetName()}}; {add}: {{services.Count}} services");
return 0;
""")
        projects.append((f"alone:{p}", d, asm, "alone", p))
    # 3. A generic host with all four packages.
    refs = {p: har_versions[p] for p in PACKAGES}
    refs["Microsoft.Extensions.Hosting"] = central.get("Microsoft.Extensions.Hosting") or "10.0.0"
    d = os.path.join(work, "host", "HarHostCheck")
    if wanted("host:all"):
        write(os.path.join(d, "HarHostCheck.csproj"), project(refs))
        shutil.copy(os.path.join(HERE, "HostCheck", "Program.cs"), os.path.join(d, "Program.cs"))
        projects.append(("host:all", d, "HarHostCheck", "host", None))
    # 4. The XML documentation checker: a consumer of all four packages that reflects over them.
    doccheck = os.path.join(work, "tools", "HarDocCheck")
    if any(wanted(f"xmldoc:{p}") for p in PACKAGES):
        write(os.path.join(doccheck, "HarDocCheck.csproj"), project({p: har_versions[p] for p in PACKAGES}))
        shutil.copy(os.path.join(HERE, "DocCheck", "Program.cs"), os.path.join(doccheck, "Program.cs"))
    # 5. The PDB checker (a tool of this test, not a consumer; its own project file).
    pdb = os.path.join(work, "tools", "PdbCheck")
    os.makedirs(pdb)
    for f in ("PdbCheck.csproj", "Program.cs"):
        shutil.copy(os.path.join(HERE, "PdbCheck", f), os.path.join(pdb, f))

    slnx = os.path.join(work, "consumer.slnx")
    all_dirs = [d for _, d, _, _, _ in projects] + [pdb] + ([doccheck] if os.path.isdir(doccheck) else [])
    write(slnx, "<Solution>\n" + "".join(
        f'  <Project Path="{os.path.relpath(os.path.join(d, os.path.basename(d) + ".csproj"), work)}" />\n'
        for d in all_dirs) + "</Solution>\n")

    t = time.monotonic()
    rc, out = sh(["dotnet", "restore", slnx], work, BUILD_TIMEOUT, env, os.path.join(work, "restore.log"))
    print(f"restore: exit {rc}, {time.monotonic() - t:.0f} s ({len(all_dirs)} projects)", flush=True)
    t = time.monotonic()
    rc, build_out = sh(["dotnet", "build", slnx, "-c", "Release", "--no-restore", "-nologo", "-clp:NoSummary"],
                       work, BUILD_TIMEOUT, env, os.path.join(work, "build.log"))
    print(f"build: exit {rc}, {time.monotonic() - t:.0f} s", flush=True)
    restore_out = out

    def diagnostics(d, text, kinds=("error",)):
        proj = os.path.join(d, os.path.basename(d) + ".csproj")
        seen = []
        for l in text.splitlines():
            if proj in l and any(f" {k} " in l for k in kinds):
                l = l.replace(f" [{proj}]", "").replace(proj, "").replace(d + os.sep, "").replace(ROOT + os.sep, "").strip()
                if l not in seen:
                    seen.append(l)
        return seen

    def built(d, asm):
        return os.path.join(d, "bin", "Release", "net10.0", asm + ".dll")

    models = os.path.join(ROOT, "models")
    for name, d, asm, kind, extra in projects:
        dll = built(d, asm)
        if not os.path.exists(dll):
            errs = diagnostics(d, restore_out) + sorted(diagnostics(d, build_out), key=lambda e: [
                int(x) if x.isdigit() else x for x in re.split(r"(\d+)", e.split(":")[0])])
            record(name, False, "does not build: " + ("; ".join(errs[:6]) or "see build.log"))
            continue
        warns = [w for w in diagnostics(d, build_out, ("warning",)) if re.search(r"warning (CS|IL|CA)", w)]
        if kind == "alone":
            assets = json.load(open(os.path.join(d, "obj", "project.assets.json"), encoding="utf-8"))
            old = sorted(k for k, v in assets["libraries"].items()
                         if v.get("type") == "package" and k.lower().startswith("microsoft.extensions.")
                         and int(k.split("/")[1].split(".")[0]) < 10)
            if old:
                record(name, False, f"{extra} alone brings Microsoft.Extensions packages older than 10.x: {', '.join(old)}")
                continue
        if time.monotonic() - t0 > BUDGET:
            record(name, False, f"not run: the consumer test's {BUDGET // 60}-minute budget is spent (see the slow runs above)")
            continue
        rundir = os.path.join(work, "run", asm)
        os.makedirs(rundir)
        shutil.copytree(models, os.path.join(rundir, "models"))
        t = time.monotonic()
        rc, out = sh(["dotnet", dll], rundir, RUN_TIMEOUT, env, os.path.join(rundir, "output.log"))
        took = time.monotonic() - t
        if rc != 0:
            tail = " | ".join(l for l in out.strip().splitlines()[-8:])
            why = f"timed out after {RUN_TIMEOUT} s" if rc is None else f"exit code {rc}"
            record(name, False, f"builds, but running it failed ({why}, {took:.0f} s): {tail}")
            continue
        record(name, True)
        for w in warns[:5]:
            print(f"     warning: {w}")
        if kind == "host":
            print("     " + "\n     ".join(out.strip().splitlines()[-30:]))

    # The XML documentation of every package: only what consumers can see.
    docdll = os.path.join(doccheck, "bin", "Release", "net10.0", "HarDocCheck.dll")
    for p in [p for p in PACKAGES if wanted(f"xmldoc:{p}")]:
        name = f"xmldoc:{p}"
        if not os.path.exists(docdll):
            record(name, False, "the documentation checker (.ci/consumer/DocCheck) does not build: "
                   + "; ".join(diagnostics(doccheck, restore_out + build_out)[:4]))
            continue
        rc, out = sh(["dotnet", docdll, os.path.join(packages_dir, f"{p}.{har_versions[p]}.nupkg"), p],
                     work, RUN_TIMEOUT, env)
        record(name, rc == 0, " | ".join(out.strip().splitlines()[-6:]))
        if rc == 0:
            print("     " + out.strip().splitlines()[-1])

    # SourceLink / deterministic paths of every packed PDB.
    if not any(wanted(f"sourcelink:{p}") for p in PACKAGES):
        return finish(work, t0)
    pdbdll = os.path.join(pdb, "bin", "Release", "net10.0", "PdbCheck.dll")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout.strip()
    url = subprocess.run(["dotnet", "msbuild", os.path.join(ROOT, "src", "Har.Inference", "Har.Inference.csproj"),
                          "-getProperty:RepositoryUrl"], cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout.strip()
    tracked = os.path.join(work, "tracked-paths.txt")
    with open(tracked, "w", encoding="utf-8") as f:
        subprocess.run(["git", "ls-tree", "-r", "--name-only", commit], cwd=ROOT, stdout=f, text=True)
    for p in [p for p in PACKAGES if wanted(f"sourcelink:{p}")]:
        name = f"sourcelink:{p}"
        if not os.path.exists(pdbdll):
            record(name, False, "the PDB checker (.ci/consumer/PdbCheck) does not build: "
                   + "; ".join(diagnostics(pdb, build_out)[:4]))
            continue
        ver = har_versions[p]
        rc, out = sh(["dotnet", pdbdll, os.path.join(packages_dir, f"{p}.{ver}.nupkg"),
                      os.path.join(packages_dir, f"{p}.{ver}.snupkg"), p, url, commit, tracked], work, RUN_TIMEOUT, env)
        record(name, rc == 0, " | ".join(out.strip().splitlines()[-6:]))
        if rc == 0:
            print("     " + out.strip().splitlines()[-1])
    return finish(work, t0)


def finish(work, t0):
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    with open(os.path.join(work, "counts"), "w") as f:
        f.write(f"{passed} {failed}\n")
    print(f"consumer test: {passed} passed, {failed} failed, {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
