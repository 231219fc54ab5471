// Consumer test "xmldoc:<package>" (.ci/consumer/run.py): the XML documentation a package ships documents only what
// a consumer can call. A console app that references the four packed packages loads the package's assembly (checking
// it is the DLL inside the .nupkg), lists with System.Reflection the types and members visible outside it, writes
// their documentation IDs (ECMA-334 annex D), and fails (exit 1) when lib/net10.0/<id>.xml in the .nupkg has a
// <member> whose ID is not one of them: an internal or private member, or an ID that names nothing.
//
// Visible: a public type, or a nested type that is public (or protected / protected internal in a type that is not
// sealed) inside a visible type; in a visible type, a public member, or a protected / protected internal one when the
// type is not sealed; a property or event when any of its accessors is. This is deliberately a second, independent
// implementation: the build step that trims the file (eng/PublicDocumentation.cs) reads metadata with
// System.Reflection.Metadata instead.
//
// It also fails when a visible type has no documentation (every public type of a library is documented: CS1591),
// and prints how many visible members have a doc.
// Usage: DocCheck <nupkg> <package id>
using System.IO.Compression;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: DocCheck <nupkg> <package id>");
    return 2;
}

var (nupkg, id) = (args[0], args[1]);
var problems = new List<string>();

using var package = ZipFile.OpenRead(nupkg);
var xmlEntry = package.GetEntry($"lib/net10.0/{id}.xml");
var dllEntry = package.GetEntry($"lib/net10.0/{id}.dll");
if (xmlEntry is null || dllEntry is null)
{
    Console.WriteLine($"{id}: the package has no lib/net10.0/{id}.xml or {id}.dll");
    return 1;
}

XDocument xml;
using (var s = xmlEntry.Open())
{
    xml = XDocument.Load(s);
}

var documented = xml.Descendants("member").Select(m => (string?)m.Attribute("name") ?? "").ToList();

// The assembly this app loaded must be the one in the .nupkg (same module version id).
Guid packedMvid;
using (var s = dllEntry.Open())
using (var m = new MemoryStream())
{
    s.CopyTo(m);
    m.Position = 0;
    using var pe = new PEReader(m);
    var md = pe.GetMetadataReader();
    packedMvid = md.GetGuid(md.GetModuleDefinition().Mvid);
}

var assembly = Assembly.Load(new AssemblyName(id));
if (assembly.ManifestModule.ModuleVersionId != packedMvid)
{
    Console.WriteLine($"{id}: the assembly loaded ({assembly.Location}) is not the DLL in {Path.GetFileName(nupkg)}");
    return 1;
}

Type[] types;
try
{
    types = assembly.GetTypes();
}
catch (ReflectionTypeLoadException e)
{
    Console.WriteLine($"{id}: types failed to load: {string.Join("; ", e.LoaderExceptions.Take(3).Select(x => x?.Message))}");
    return 1;
}

var visible = new HashSet<string>(StringComparer.Ordinal);
var hidden = new HashSet<string>(StringComparer.Ordinal);
var visibleTypes = new List<string>();
const BindingFlags Declared = BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
foreach (var type in types)
{
    var typeVisible = IsVisibleType(type);
    var typeId = "T:" + TypeId(type);
    (typeVisible ? visible : hidden).Add(typeId);
    if (typeVisible && type.GetCustomAttribute<CompilerGeneratedAttribute>() is null)
    {
        visibleTypes.Add(typeId);
    }

    foreach (var member in type.GetMembers(Declared))
    {
        string? memberId = member switch
        {
            MethodBase method => "M:" + MethodId(type, method),
            PropertyInfo property => "P:" + TypeId(type) + "." + Escape(property.Name) + Parameters(property.GetIndexParameters()),
            FieldInfo field => "F:" + TypeId(type) + "." + field.Name,
            EventInfo @event => "E:" + TypeId(type) + "." + Escape(@event.Name),
            _ => null, // nested types: listed by GetTypes()
        };
        if (memberId is null)
        {
            continue;
        }

        var memberVisible = typeVisible && member switch
        {
            MethodBase method => IsVisibleAccess(method.IsPublic, method.IsFamily || method.IsFamilyOrAssembly, type),
            FieldInfo field => IsVisibleAccess(field.IsPublic, field.IsFamily || field.IsFamilyOrAssembly, type),
            PropertyInfo property => property.GetAccessors(nonPublic: true).Any(a => IsVisibleAccess(a.IsPublic, a.IsFamily || a.IsFamilyOrAssembly, type)),
            EventInfo @event => new[] { @event.AddMethod, @event.RemoveMethod }.Any(a => a is not null && IsVisibleAccess(a.IsPublic, a.IsFamily || a.IsFamilyOrAssembly, type)),
            _ => false,
        };
        (memberVisible ? visible : hidden).Add(memberId);
    }
}

foreach (var name in documented)
{
    if (visible.Contains(name))
    {
        continue;
    }

    problems.Add(hidden.Contains(name)
        ? $"documents {name}, which consumers cannot see (internal, private, or protected in a sealed type)"
        : $"documents {name}, which names no type or member of {id}");
}

var documentedSet = documented.ToHashSet(StringComparer.Ordinal);
foreach (var typeId in visibleTypes.Where(t => !documentedSet.Contains(t)))
{
    problems.Add($"the public type {typeId} has no documentation");
}

foreach (var p in problems.Take(20))
{
    Console.WriteLine($"{id}: {p}");
}

if (problems.Count > 0)
{
    Console.WriteLine($"{id}: {problems.Count} problem(s) in lib/net10.0/{id}.xml of {Path.GetFileName(nupkg)}");
    return 1;
}

Console.WriteLine($"{id}: {documented.Count} documented members in lib/net10.0/{id}.xml, every one visible to consumers " +
                  $"({visible.Count} visible types and members, {visibleTypes.Count} public types all documented)");
return 0;

static bool IsVisibleType(Type type) =>
    type.IsPublic
    || (type.IsNestedPublic && IsVisibleType(type.DeclaringType!))
    || ((type.IsNestedFamily || type.IsNestedFamORAssem) && IsVisibleType(type.DeclaringType!) && !type.DeclaringType!.IsSealed);

static bool IsVisibleAccess(bool isPublic, bool isProtected, Type declaring) => isPublic || (isProtected && !declaring.IsSealed);

// A type definition: namespace, declaring types, name with `arity.
static string TypeId(Type type)
{
    // A file-local type (`file class C`, e.g. a source generator's) is named <File>F{checksum}__C; its ID says C.
    var name = Regex.Replace(type.Name, "^<[^>]*>F[0-9A-Fa-f]+__", "");

    return type.IsNested ? TypeId(type.DeclaringType!) + "." + name
        : string.IsNullOrEmpty(type.Namespace) ? name
        : type.Namespace + "." + name;
}

static string MethodId(Type declaring, MethodBase method)
{
    var id = new StringBuilder(TypeId(declaring)).Append('.').Append(Escape(method.Name));
    if (method.IsGenericMethodDefinition)
    {
        id.Append("``").Append(method.GetGenericArguments().Length);
    }

    id.Append(Parameters(method.GetParameters()));
    if (method is MethodInfo { IsSpecialName: true } info && method.Name is "op_Implicit" or "op_Explicit")
    {
        id.Append('~').Append(ParameterType(info.ReturnType));
    }

    return id.ToString();
}

static string Parameters(ParameterInfo[] parameters) =>
    parameters.Length == 0 ? "" : "(" + string.Join(",", parameters.Select(p => ParameterType(p.ParameterType))) + ")";

// A type as written in a parameter list: System.Collections.Generic.List{System.String}, `0, ``0, T[], T[0:,0:], T*, T@.
static string ParameterType(Type type)
{
    if (type.IsByRef)
    {
        return ParameterType(type.GetElementType()!) + "@";
    }

    if (type.IsPointer)
    {
        return ParameterType(type.GetElementType()!) + "*";
    }

    if (type.IsArray)
    {
        return ParameterType(type.GetElementType()!) + (type.IsSZArray ? "[]" : "[0:" + string.Concat(Enumerable.Repeat(",0:", type.GetArrayRank() - 1)) + "]");
    }

    if (type.IsGenericParameter)
    {
        return (type.DeclaringMethod is null ? "`" : "``") + type.GenericParameterPosition;
    }

    if (!type.IsGenericType)
    {
        return TypeId(type);
    }

    // Outer<A>.Inner<B> is one generic type with arguments [A, B]: each level takes as many as its own `arity.
    var arguments = type.GetGenericArguments();
    var levels = new List<Type>();
    for (var t = type.GetGenericTypeDefinition(); t is not null; t = t.DeclaringType)
    {
        levels.Insert(0, t);
    }

    var id = new StringBuilder(string.IsNullOrEmpty(levels[0].Namespace) ? "" : levels[0].Namespace + ".");
    var next = 0;
    foreach (var level in levels)
    {
        var tick = level.Name.IndexOf('`', StringComparison.Ordinal);
        if (level != levels[0])
        {
            id.Append('.');
        }

        if (tick < 0)
        {
            id.Append(level.Name);
            continue;
        }

        var arity = int.Parse(level.Name[(tick + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        id.Append(level.Name, 0, tick).Append('{')
          .Append(string.Join(",", arguments.Skip(next).Take(arity).Select(ParameterType))).Append('}');
        next += arity;
    }

    return id.ToString();
}

// Member names as the compiler writes them: .ctor → #ctor, explicit implementations Ns.IFoo<T>.M → Ns#IFoo{T}#M.
static string Escape(string name) => name.Replace('.', '#').Replace('<', '{').Replace('>', '}');
