// Checks that a packed Har library can be debugged from its sources, as `dotnet sourcelink test` would, without
// needing the repository to be published: reads the .nupkg and .snupkg and fails (exit 1) unless
//   - the .nuspec names the repository (<repository type="git" url=... commit=...>) with the expected URL and commit;
//   - the DLL is deterministic (a Reproducible debug directory entry) and its CodeView entry matches the PDB's id;
//   - the PDB carries SourceLink JSON, and every source document is either embedded in the PDB or mapped by it to
//     the repository's raw-file URL at that commit, for a path the repository tracks at that commit;
//   - every document path is path-mapped (/_/...), so no path of the build machine is in the PDB.
// Usage: PdbCheck <nupkg> <snupkg> <package id> <repository URL> <commit> <file listing the tracked paths>
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;
using System.Xml.Linq;

if (args.Length != 6)
{
    Console.Error.WriteLine("usage: PdbCheck <nupkg> <snupkg> <package id> <repository URL> <commit> <tracked-paths file>");
    return 2;
}

var (nupkg, snupkg, id, repositoryUrl, commit) = (args[0], args[1], args[2], args[3].TrimEnd('/'), args[4]);
if (repositoryUrl.Length == 0)
{
    Console.WriteLine($"{id}: the repository URL is empty: set HarRepositoryUrl in Directory.Build.props");
    return 1;
}

var tracked = new HashSet<string>(File.ReadAllLines(args[5]), StringComparer.Ordinal);
var problems = new List<string>();
var sourceLinkKind = new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A");
var embeddedSourceKind = new Guid("0E8A571B-6926-466E-B4AD-8AB04611F5FE");

using var package = ZipFile.OpenRead(nupkg);
using var symbols = ZipFile.OpenRead(snupkg);

// The .nuspec's repository element.
var nuspecEntry = package.GetEntry($"{id}.nuspec") ?? throw new InvalidOperationException($"{nupkg} has no {id}.nuspec");
XDocument nuspec;
using (var s = nuspecEntry.Open())
{
    nuspec = XDocument.Load(s);
}

var repository = nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == "repository");
if (repository is null)
{
    problems.Add("the .nuspec has no <repository> element (RepositoryUrl / PublishRepositoryUrl not set)");
}
else
{
    if ((string?)repository.Attribute("url") != repositoryUrl)
    {
        problems.Add($".nuspec repository url is '{(string?)repository.Attribute("url")}', expected '{repositoryUrl}'");
    }

    if ((string?)repository.Attribute("commit") != commit)
    {
        problems.Add($".nuspec repository commit is '{(string?)repository.Attribute("commit")}', expected '{commit}'");
    }
}

// The DLL's debug directory: deterministic, and pointing at the PDB in the symbols package.
var dllBytes = ReadEntry(package, $"lib/net10.0/{id}.dll");
var pdbBytes = ReadEntry(symbols, $"lib/net10.0/{id}.pdb");
using var pe = new PEReader(new MemoryStream(dllBytes));
var debug = pe.ReadDebugDirectory();
if (!debug.Any(e => e.Type == DebugDirectoryEntryType.Reproducible))
{
    problems.Add("the DLL is not deterministic (no Reproducible debug directory entry)");
}

var codeView = debug.FirstOrDefault(e => e.Type == DebugDirectoryEntryType.CodeView);
using var pdbProvider = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(pdbBytes));
var pdb = pdbProvider.GetMetadataReader();
var pdbId = new BlobContentId(pdb.DebugMetadataHeader!.Id);
if (codeView.Type != DebugDirectoryEntryType.CodeView)
{
    problems.Add("the DLL has no CodeView debug directory entry");
}
else if (pe.ReadCodeViewDebugDirectoryData(codeView).Guid != pdbId.Guid)
{
    problems.Add("the PDB in the .snupkg is not the DLL's PDB (CodeView GUID differs)");
}

// SourceLink JSON on the module.
string? sourceLinkJson = null;
foreach (var h in pdb.GetCustomDebugInformation(EntityHandle.ModuleDefinition))
{
    var cdi = pdb.GetCustomDebugInformation(h);
    if (pdb.GetGuid(cdi.Kind) == sourceLinkKind)
    {
        sourceLinkJson = System.Text.Encoding.UTF8.GetString(pdb.GetBlobBytes(cdi.Value));
    }
}

var map = new List<(string From, string To)>();
if (sourceLinkJson is null)
{
    problems.Add("the PDB has no SourceLink JSON");
}
else
{
    using var json = JsonDocument.Parse(sourceLinkJson);
    foreach (var d in json.RootElement.GetProperty("documents").EnumerateObject())
    {
        map.Add((d.Name, d.Value.GetString()!));
    }
}

// The raw-file URL SourceLink should produce for the repository (GitHub-hosted: raw.githubusercontent.com).
var repoUri = new Uri(repositoryUrl.EndsWith(".git", StringComparison.Ordinal) ? repositoryUrl[..^4] : repositoryUrl);
var expectedPrefix = repoUri.Host == "github.com"
    ? $"https://raw.githubusercontent.com{repoUri.AbsolutePath}/{commit}/"
    : null;

int embedded = 0, linked = 0;
foreach (var dh in pdb.Documents)
{
    var name = pdb.GetString(pdb.GetDocument(dh).Name);
    if (!name.StartsWith("/_/", StringComparison.Ordinal))
    {
        problems.Add($"document '{name}' is not path-mapped to /_/ (ContinuousIntegrationBuild off?)");
        continue;
    }

    var isEmbedded = pdb.GetCustomDebugInformation(dh).Any(c => pdb.GetGuid(pdb.GetCustomDebugInformation(c).Kind) == embeddedSourceKind);
    if (isEmbedded)
    {
        embedded++;
        continue;
    }

    var url = Map(name);
    if (url is null)
    {
        problems.Add($"document '{name}' is neither embedded nor mapped by SourceLink");
    }
    else if (expectedPrefix is not null ? !url.StartsWith(expectedPrefix, StringComparison.Ordinal) : !url.Contains(commit, StringComparison.Ordinal))
    {
        problems.Add($"document '{name}' maps to '{url}', not to {expectedPrefix ?? repositoryUrl + " at " + commit}");
    }
    else if (!tracked.Contains(name["/_/".Length..]))
    {
        problems.Add($"document '{name}' maps to '{url}', but the repository does not track that path at {commit}");
    }
    else
    {
        linked++;
    }
}

if (linked == 0)
{
    problems.Add("no source document is mapped to the repository");
}

foreach (var p in problems.Take(20))
{
    Console.WriteLine($"{id}: {p}");
}

if (problems.Count > 0)
{
    Console.WriteLine($"{id}: {problems.Count} problem(s)");
    return 1;
}

Console.WriteLine($"{id}: deterministic; SourceLink maps {linked} documents to {expectedPrefix ?? repositoryUrl}*, {embedded} generated ones embedded");
return 0;

string? Map(string path)
{
    foreach (var (from, to) in map)
    {
        if (from.EndsWith('*') && path.StartsWith(from[..^1], StringComparison.Ordinal))
        {
            return to.Replace("*", path[(from.Length - 1)..].Replace('\\', '/'), StringComparison.Ordinal);
        }

        if (from == path)
        {
            return to;
        }
    }

    return null;
}

static byte[] ReadEntry(ZipArchive zip, string path)
{
    var entry = zip.GetEntry(path) ?? throw new InvalidOperationException($"the package has no {path}");
    using var s = entry.Open();
    using var m = new MemoryStream();
    s.CopyTo(m);
    return m.ToArray();
}
