// HarPublicDocumentation: the MSBuild task eng/Library.targets runs after the compiler on every library. It writes
// the XML documentation file that ships (bin/, the .nupkg) with only the members a consumer of the package can see.
//
// The C# compiler writes the doc comment of every documented member, internal and private ones too, and has no
// option to leave them out (dotnet/roslyn#69872); a consumer's IDE then shows the doc of an internal overload as if
// it could be called. This task reads the compiled assembly with System.Reflection.Metadata, computes the
// documentation comment ID of every type and member exactly as the compiler does (ECMA-334 annex D, as Roslyn's
// DocumentationCommentIDVisitor writes them), and keeps a <member> only when its ID belongs to a visible one:
//   - a public type, or a nested type that is public (or protected / protected internal in a type that is not
//     sealed) inside a visible type;
//   - in a visible type, a public member, or a protected / protected internal one when the type is not sealed
//     (a property or event counts when any of its accessors does).
// An ID in the file that matches no type or member of the assembly fails the build: the ID computation does not
// know that shape of signature, and guessing could drop a public member's doc or ship an internal one.
//
// <inheritdoc/> is kept working: the compiler writes it as it is, and the IDE resolves it from the documentation of
// the member it inherits from. When that member's doc is removed (an internal base class or interface, or an
// internal cref="..."), the inherited text is copied in its place.
//
// Compiled by RoslynCodeTaskFactory against netstandard2.0 (plus System.Reflection.Metadata and
// System.Collections.Immutable, see eng/Library.targets), so it sticks to APIs and language features that need
// nothing newer.
using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class HarPublicDocumentation : Task
{
    /// <summary>The compiled assembly (the intermediate one, in obj/).</summary>
    [Required]
    public string AssemblyFile { get; set; }

    /// <summary>The compiler's documentation file: every documented member.</summary>
    [Required]
    public string AllMembersFile { get; set; }

    /// <summary>The documentation file to write: only the members visible to consumers.</summary>
    [Required]
    public string PublicFile { get; set; }

    public override bool Execute()
    {
        using (var stream = File.OpenRead(AssemblyFile))
        using (var pe = new PEReader(stream))
        {
            return Run(new DocIdIndex(pe.GetMetadataReader()));
        }
    }

    private bool Run(DocIdIndex ids)
    {
        var index = ids.Build();
        var document = XDocument.Load(AllMembersFile, LoadOptions.PreserveWhitespace);
        var members = document.Root == null ? null : document.Root.Element("members");
        var elements = members == null ? new List<XElement>() : members.Elements("member").ToList();

        var unknown = new List<string>();
        var all = new Dictionary<string, XElement>(StringComparer.Ordinal);
        var removed = new Dictionary<string, XElement>(StringComparer.Ordinal);
        var kept = new List<XElement>();
        foreach (var element in elements)
        {
            var id = (string)element.Attribute("name") ?? string.Empty;
            all[id] = element;
            DocMember member;
            if (!index.TryGetValue(id, out member))
            {
                unknown.Add(id);
            }
            else if (member.Visible)
            {
                kept.Add(element);
            }
            else
            {
                removed[id] = element;
            }
        }

        if (unknown.Count > 0)
        {
            Log.LogError(
                "{0}: {1} documented member(s) match no type or member of {2}, so whether a consumer sees them is unknown: {3}. "
                + "eng/PublicDocumentation.cs does not compute these documentation IDs the way the compiler does; extend it.",
                Path.GetFileName(AllMembersFile), unknown.Count, Path.GetFileName(AssemblyFile), string.Join(", ", unknown.Take(10)));
            return false;
        }

        // Inherited docs first (they read the removed members), then the removal.
        var inherited = new InheritedDocs(ids, index, all, removed, Log);
        var expanded = 0;
        foreach (var element in kept)
        {
            expanded += inherited.Expand(element);
        }

        if (Log.HasLoggedErrors)
        {
            return false;
        }

        foreach (var element in removed.Values)
        {
            // The indentation before the element goes with it.
            var before = element.PreviousNode as XText;
            if (before != null && string.IsNullOrWhiteSpace(before.Value))
            {
                before.Remove();
            }

            element.Remove();
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(PublicFile)));
        var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), NewLineHandling = NewLineHandling.None };
        using (var writer = XmlWriter.Create(PublicFile, settings))
        {
            document.Save(writer);
        }

        Log.LogMessage(
            MessageImportance.Normal,
            "{0}: {1} of {2} documented members are visible to consumers ({3} internal or private removed, {4} <inheritdoc/> of removed members expanded)",
            Path.GetFileName(PublicFile), kept.Count, elements.Count, removed.Count, expanded);
        return true;
    }
}

/// <summary>A documented entity of the assembly: its documentation ID and whether a consumer sees it.</summary>
internal sealed class DocMember
{
    public DocMember(char kind, TypeDefinitionHandle type, string part, bool visible, bool overrides)
    {
        Kind = kind;
        Type = type;
        Part = part;
        Visible = visible;
        Overrides = overrides;
    }

    /// <summary>T, M, P, F or E.</summary>
    public char Kind { get; }

    /// <summary>The type itself (T:) or the declaring type.</summary>
    public TypeDefinitionHandle Type { get; }

    /// <summary>What follows "Type." in the ID (the name, generic arity, parameters); empty for a type.</summary>
    public string Part { get; }

    public bool Visible { get; }

    /// <summary>A virtual member that overrides its base class's (not a new slot).</summary>
    public bool Overrides { get; }
}

/// <summary>A base class or interface of a type, with its type arguments.</summary>
internal sealed class Ancestor
{
    public Ancestor(TypeDefinitionHandle definition, string[] arguments, bool isInterface)
    {
        Definition = definition;
        Arguments = arguments;
        IsInterface = isInterface;
    }

    public TypeDefinitionHandle Definition { get; }

    public string[] Arguments { get; }

    public bool IsInterface { get; }
}

/// <summary>A type as it appears in a documentation ID, with its definition and type arguments when it is one of this assembly.</summary>
internal sealed class DocType
{
    public static readonly string[] NoArguments = new string[0];

    public DocType(string id, TypeDefinitionHandle definition, string[] arguments)
    {
        Id = id;
        Definition = definition;
        Arguments = arguments;
    }

    public DocType(string id)
        : this(id, default(TypeDefinitionHandle), NoArguments)
    {
    }

    public string Id { get; }

    public TypeDefinitionHandle Definition { get; }

    public string[] Arguments { get; }
}

/// <summary>The documentation ID of every type and member of one assembly (ECMA-334 annex D, as Roslyn writes them).</summary>
internal sealed class DocIdIndex : ISignatureTypeProvider<DocType, string[]>
{
    private static readonly Regex FileLocalPrefix = new Regex("^<[^>]*>F[0-9A-Fa-f]+__", RegexOptions.CultureInvariant);

    private readonly MetadataReader _reader;
    private readonly Dictionary<TypeDefinitionHandle, string> _typeNames = new Dictionary<TypeDefinitionHandle, string>();

    public DocIdIndex(MetadataReader reader)
    {
        _reader = reader;
    }

    public Dictionary<string, DocMember> Build()
    {
        var index = new Dictionary<string, DocMember>(StringComparer.Ordinal);
        foreach (var typeHandle in _reader.TypeDefinitions)
        {
            var type = _reader.GetTypeDefinition(typeHandle);
            var visible = IsVisible(typeHandle);
            var sealedType = (type.Attributes & TypeAttributes.Sealed) != 0;
            var typeId = TypeName(typeHandle);
            Add(index, new DocMember('T', typeHandle, string.Empty, visible, false), typeId);

            foreach (var h in type.GetFields())
            {
                var field = _reader.GetFieldDefinition(h);
                // Field and method accessibilities have the same values (ECMA-335 II.23.1.5, II.23.1.10).
                var access = (MethodAttributes)(int)(field.Attributes & FieldAttributes.FieldAccessMask);
                Add(index, new DocMember('F', typeHandle, _reader.GetString(field.Name), visible && IsVisible(access, sealedType), false), typeId);
            }

            foreach (var h in type.GetMethods())
            {
                var method = _reader.GetMethodDefinition(h);
                Add(index, new DocMember('M', typeHandle, MethodPart(h, null), visible && IsVisible(method.Attributes, sealedType), Overrides(method.Attributes)), typeId);
            }

            foreach (var h in type.GetProperties())
            {
                var property = _reader.GetPropertyDefinition(h);
                var accessors = property.GetAccessors();
                Add(index, new DocMember('P', typeHandle, PropertyPart(h, null), visible && AnyVisible(sealedType, accessors.Getter, accessors.Setter), Overrides(accessors.Getter, accessors.Setter)), typeId);
            }

            foreach (var h in type.GetEvents())
            {
                var @event = _reader.GetEventDefinition(h);
                var accessors = @event.GetAccessors();
                Add(index, new DocMember('E', typeHandle, Escape(_reader.GetString(@event.Name)), visible && AnyVisible(sealedType, accessors.Adder, accessors.Remover), Overrides(accessors.Adder, accessors.Remover)), typeId);
            }
        }

        return index;
    }

    private static void Add(Dictionary<string, DocMember> index, DocMember member, string typeId)
    {
        var id = member.Kind + ":" + typeId + (member.Kind == 'T' ? string.Empty : "." + member.Part);

        // Two entities with one ID (a method and its own overload differing only in ref / out) are both visible or
        // both not in practice; a visible one wins so that its doc is never dropped.
        DocMember existing;
        if (!index.TryGetValue(id, out existing) || (member.Visible && !existing.Visible))
        {
            index[id] = member;
        }
    }

    // ---- Visibility -------------------------------------------------------------------------------------------

    /// <summary>Whether code outside the assembly (and its friends) can name the type.</summary>
    public bool IsVisible(TypeDefinitionHandle handle)
    {
        var type = _reader.GetTypeDefinition(handle);
        switch (type.Attributes & TypeAttributes.VisibilityMask)
        {
            case TypeAttributes.Public:
                return true;
            case TypeAttributes.NestedPublic:
                return IsVisible(type.GetDeclaringType());
            case TypeAttributes.NestedFamily:
            case TypeAttributes.NestedFamORAssem:
                var declaring = type.GetDeclaringType();
                return IsVisible(declaring) && (_reader.GetTypeDefinition(declaring).Attributes & TypeAttributes.Sealed) == 0;
            default:
                return false;
        }
    }

    private static bool IsVisible(MethodAttributes attributes, bool sealedType)
    {
        switch (attributes & MethodAttributes.MemberAccessMask)
        {
            case MethodAttributes.Public:
                return true;
            case MethodAttributes.Family:
            case MethodAttributes.FamORAssem:
                return !sealedType;
            default:
                return false;
        }
    }

    private bool AnyVisible(bool sealedType, params MethodDefinitionHandle[] accessors) =>
        accessors.Any(a => !a.IsNil && IsVisible(_reader.GetMethodDefinition(a).Attributes, sealedType));

    private static bool Overrides(MethodAttributes attributes) =>
        (attributes & MethodAttributes.Virtual) != 0 && (attributes & MethodAttributes.VtableLayoutMask) == MethodAttributes.ReuseSlot;

    private bool Overrides(params MethodDefinitionHandle[] accessors) =>
        accessors.Any(a => !a.IsNil && Overrides(_reader.GetMethodDefinition(a).Attributes));

    // ---- ID parts ---------------------------------------------------------------------------------------------

    /// <summary>The ID of a type definition: namespace, declaring types and the metadata name (with `arity).</summary>
    public string TypeName(TypeDefinitionHandle handle)
    {
        string name;
        if (_typeNames.TryGetValue(handle, out name))
        {
            return name;
        }

        var type = _reader.GetTypeDefinition(handle);
        var declaring = type.GetDeclaringType();
        var ns = _reader.GetString(type.Namespace);

        // A file-local type (`file class C`, e.g. a source generator's) is emitted as <File>F{checksum}__C; its ID says C.
        var simple = FileLocalPrefix.Replace(_reader.GetString(type.Name), string.Empty);
        name = !declaring.IsNil ? TypeName(declaring) + "." + simple
            : ns.Length > 0 ? ns + "." + simple
            : simple;
        _typeNames[handle] = name;
        return name;
    }

    /// <summary>Name, ``arity, (parameters) and, for a conversion operator, ~return type; type parameters of the
    /// declaring type are written as `n, or replaced by <paramref name="typeArguments"/> when given.</summary>
    public string MethodPart(MethodDefinitionHandle handle, string[] typeArguments)
    {
        var method = _reader.GetMethodDefinition(handle);
        var name = _reader.GetString(method.Name);
        var signature = method.DecodeSignature(this, typeArguments);
        var part = new StringBuilder(Escape(name));
        if (signature.GenericParameterCount > 0)
        {
            part.Append("``").Append(signature.GenericParameterCount);
        }

        AppendParameters(part, signature.ParameterTypes);
        if ((method.Attributes & MethodAttributes.SpecialName) != 0 && (name == "op_Implicit" || name == "op_Explicit"))
        {
            part.Append('~').Append(signature.ReturnType.Id);
        }

        return part.ToString();
    }

    public string PropertyPart(PropertyDefinitionHandle handle, string[] typeArguments)
    {
        var property = _reader.GetPropertyDefinition(handle);
        var part = new StringBuilder(Escape(_reader.GetString(property.Name)));
        AppendParameters(part, property.DecodeSignature(this, typeArguments).ParameterTypes);
        return part.ToString();
    }

    private static void AppendParameters(StringBuilder part, ImmutableArray<DocType> parameters)
    {
        if (parameters.Length > 0)
        {
            part.Append('(').Append(string.Join(",", parameters.Select(p => p.Id))).Append(')');
        }
    }

    /// <summary>Member names as Roslyn escapes them (explicit interface implementations: Ns.IFoo&lt;T&gt;.M → Ns#IFoo{T}#M).</summary>
    private static string Escape(string name) => name.Replace('.', '#').Replace('<', '{').Replace('>', '}');

    /// <summary>A base type or interface (a TypeDefinition, TypeReference or TypeSpecification handle), in the context of the type arguments of the type that names it.</summary>
    public DocType Decode(EntityHandle handle, string[] typeArguments)
    {
        switch (handle.Kind)
        {
            case HandleKind.TypeDefinition:
                return GetTypeFromDefinition(_reader, (TypeDefinitionHandle)handle, 0);
            case HandleKind.TypeReference:
                return GetTypeFromReference(_reader, (TypeReferenceHandle)handle, 0);
            case HandleKind.TypeSpecification:
                return GetTypeFromSpecification(_reader, typeArguments, (TypeSpecificationHandle)handle, 0);
            default:
                return new DocType("?");
        }
    }

    // ---- Base types and interfaces (for <inheritdoc/>) --------------------------------------------------------

    /// <summary>The base classes of <paramref name="handle"/> defined in this assembly, nearest first, then every
    /// interface of this assembly it implements; type arguments are written in terms of <paramref name="handle"/>'s
    /// own type parameters (`n), as its members' IDs are.</summary>
    public List<Ancestor> Ancestors(TypeDefinitionHandle handle)
    {
        var bases = new List<Ancestor>();
        var interfaces = new List<Ancestor>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var current = handle;
        string[] arguments = null;
        while (true)
        {
            var type = _reader.GetTypeDefinition(current);
            foreach (var implementation in type.GetInterfaceImplementations())
            {
                AddInterface(_reader.GetInterfaceImplementation(implementation).Interface, arguments, interfaces, seen);
            }

            var baseType = type.BaseType.IsNil ? null : Decode(type.BaseType, arguments);
            if (baseType == null || baseType.Definition.IsNil)
            {
                break; // no base, or one of another assembly (nothing of this one derives from it further up)
            }

            bases.Add(new Ancestor(baseType.Definition, baseType.Arguments, false));
            current = baseType.Definition;
            arguments = baseType.Arguments;
        }

        bases.AddRange(interfaces);
        return bases;
    }

    private void AddInterface(EntityHandle handle, string[] arguments, List<Ancestor> interfaces, HashSet<string> seen)
    {
        var type = Decode(handle, arguments);
        if (type.Definition.IsNil || !seen.Add(type.Id))
        {
            return;
        }

        interfaces.Add(new Ancestor(type.Definition, type.Arguments, true));
        foreach (var implementation in _reader.GetTypeDefinition(type.Definition).GetInterfaceImplementations())
        {
            AddInterface(_reader.GetInterfaceImplementation(implementation).Interface, type.Arguments, interfaces, seen);
        }
    }

    /// <summary>The methods, properties or events of an ancestor: their ID part with the ancestor's type arguments
    /// substituted (to compare with a derived member's) and their own documentation ID.</summary>
    public IEnumerable<KeyValuePair<string, string>> Members(Ancestor ancestor, char kind)
    {
        var type = _reader.GetTypeDefinition(ancestor.Definition);
        var prefix = kind + ":" + TypeName(ancestor.Definition) + ".";
        if (kind == 'M')
        {
            return type.GetMethods().Select(h => new KeyValuePair<string, string>(MethodPart(h, ancestor.Arguments), prefix + MethodPart(h, null)));
        }

        if (kind == 'P')
        {
            return type.GetProperties().Select(h => new KeyValuePair<string, string>(PropertyPart(h, ancestor.Arguments), prefix + PropertyPart(h, null)));
        }

        return type.GetEvents().Select(h => Escape(_reader.GetString(_reader.GetEventDefinition(h).Name))).Select(n => new KeyValuePair<string, string>(n, prefix + n));
    }

    // ---- ISignatureTypeProvider: types as they are written in parameter lists --------------------------------

    public DocType GetPrimitiveType(PrimitiveTypeCode typeCode) => new DocType("System." + typeCode);

    public DocType GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) =>
        new DocType(TypeName(handle), handle, DocType.NoArguments);

    public DocType GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) =>
        new DocType(ReferenceName(handle));

    private string ReferenceName(TypeReferenceHandle handle)
    {
        var reference = _reader.GetTypeReference(handle);
        var name = _reader.GetString(reference.Name);
        if (reference.ResolutionScope.Kind == HandleKind.TypeReference)
        {
            return ReferenceName((TypeReferenceHandle)reference.ResolutionScope) + "." + name;
        }

        var ns = _reader.GetString(reference.Namespace);
        return ns.Length > 0 ? ns + "." + name : name;
    }

    public DocType GetTypeFromSpecification(MetadataReader reader, string[] genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
        _reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);

    /// <summary>Ns.Outer`1.Inner`1 with arguments A, B is written Ns.Outer{A}.Inner{B}: each type takes its own arity.</summary>
    public DocType GetGenericInstantiation(DocType genericType, ImmutableArray<DocType> typeArguments)
    {
        var segments = genericType.Id.Split('.');
        var next = 0;
        for (var i = 0; i < segments.Length; i++)
        {
            var tick = segments[i].LastIndexOf('`');
            int arity;
            if (tick > 0 && int.TryParse(segments[i].Substring(tick + 1), out arity))
            {
                segments[i] = segments[i].Substring(0, tick) + "{" + string.Join(",", typeArguments.Skip(next).Take(arity).Select(a => a.Id)) + "}";
                next += arity;
            }
        }

        return new DocType(string.Join(".", segments), genericType.Definition, typeArguments.Select(a => a.Id).ToArray());
    }

    public DocType GetGenericTypeParameter(string[] genericContext, int index) =>
        new DocType(genericContext != null ? genericContext[index] : "`" + index);

    public DocType GetGenericMethodParameter(string[] genericContext, int index) => new DocType("``" + index);

    public DocType GetSZArrayType(DocType elementType) => new DocType(elementType.Id + "[]");

    public DocType GetArrayType(DocType elementType, ArrayShape shape)
    {
        var id = new StringBuilder(elementType.Id).Append("[0:");
        for (var i = 1; i < shape.Rank; i++)
        {
            id.Append(",0:");
        }

        return new DocType(id.Append(']').ToString());
    }

    public DocType GetByReferenceType(DocType elementType) => new DocType(elementType.Id + "@");

    public DocType GetPointerType(DocType elementType) => new DocType(elementType.Id + "*");

    // Custom modifiers (modreq/modopt) are not part of C# documentation IDs.
    public DocType GetModifiedType(DocType modifier, DocType unmodifiedType, bool isRequired) => unmodifiedType;

    public DocType GetPinnedType(DocType elementType) => elementType;

    // Not written by this ID computation: a documented member with a function pointer parameter matches nothing and
    // fails the build (see HarPublicDocumentation) rather than being guessed at.
    public DocType GetFunctionPointerType(MethodSignature<DocType> signature) => new DocType("=FUNC:?");
}

/// <summary>Copies inherited documentation into kept members whose &lt;inheritdoc/&gt; points at a removed one.</summary>
internal sealed class InheritedDocs
{
    private static readonly string[] Singletons = { "summary", "remarks", "returns", "value", "example" };

    private readonly DocIdIndex _ids;
    private readonly Dictionary<string, DocMember> _index;
    private readonly Dictionary<string, XElement> _all;
    private readonly Dictionary<string, XElement> _removed;
    private readonly TaskLoggingHelper _log;
    private readonly HashSet<XElement> _expanding = new HashSet<XElement>();

    public InheritedDocs(DocIdIndex ids, Dictionary<string, DocMember> index, Dictionary<string, XElement> all, Dictionary<string, XElement> removed, TaskLoggingHelper log)
    {
        _ids = ids;
        _index = index;
        _all = all;
        _removed = removed;
        _log = log;
    }

    /// <summary>Replaces each &lt;inheritdoc/&gt; of <paramref name="member"/> that reads a removed member by
    /// that member's elements (those <paramref name="member"/> does not have itself); returns how many.</summary>
    public int Expand(XElement member)
    {
        if (!_expanding.Add(member))
        {
            return 0; // an <inheritdoc/> cycle: left as it is
        }

        var count = 0;
        foreach (var inheritdoc in member.Descendants("inheritdoc").ToList())
        {
            var id = (string)member.Attribute("name");
            var source = Source(id, (string)inheritdoc.Attribute("cref"));
            if (source == null)
            {
                continue;
            }

            if (inheritdoc.Parent != member || inheritdoc.Attribute("path") != null)
            {
                _log.LogError(
                    "{0}: an <inheritdoc/> inside another element or with a path reads {1}, whose doc is not shipped (consumers do not see it); write the text out.",
                    id, (string)source.Attribute("name"));
                continue;
            }

            Expand(source);
            var before = inheritdoc.PreviousNode as XText;
            var indent = before != null && string.IsNullOrWhiteSpace(before.Value) ? before.Value : string.Empty;
            var first = true;
            foreach (var element in source.Elements().Where(e => e.Name != "inheritdoc" && !AlreadyHas(member, e)).ToList())
            {
                if (!first)
                {
                    inheritdoc.AddBeforeSelf(new XText(indent));
                }

                inheritdoc.AddBeforeSelf(new XElement(element));
                first = false;
            }

            if (first && indent.Length > 0)
            {
                before.Remove();
            }

            inheritdoc.Remove();
            count++;
        }

        _expanding.Remove(member);
        return count;
    }

    /// <summary>The removed member an &lt;inheritdoc/&gt; of <paramref name="id"/> reads, or null when it reads a
    /// shipped one or one of another assembly (whose own documentation file the IDE reads).</summary>
    private XElement Source(string id, string cref)
    {
        XElement source;
        if (cref != null)
        {
            return _removed.TryGetValue(cref, out source) ? source : null;
        }

        // Without cref: the overridden member, else an implemented interface member; for a type, its base type, else
        // its interfaces. The nearest one of this assembly that has a doc is the one the IDE shows.
        foreach (var candidate in Candidates(id))
        {
            if (_all.ContainsKey(candidate))
            {
                return _removed.TryGetValue(candidate, out source) ? source : null;
            }
        }

        return null;
    }

    private IEnumerable<string> Candidates(string id)
    {
        DocMember member;
        if (!_index.TryGetValue(id, out member) || member.Kind == 'F')
        {
            yield break;
        }

        foreach (var ancestor in _ids.Ancestors(member.Type))
        {
            if (member.Kind == 'T')
            {
                yield return "T:" + _ids.TypeName(ancestor.Definition);
            }
            else if (ancestor.IsInterface || member.Overrides)
            {
                foreach (var candidate in _ids.Members(ancestor, member.Kind))
                {
                    if (candidate.Key == member.Part)
                    {
                        yield return candidate.Value;
                    }
                }
            }
        }
    }

    private static bool AlreadyHas(XElement member, XElement inherited)
    {
        if (Singletons.Contains(inherited.Name.LocalName))
        {
            return member.Elements(inherited.Name).Any();
        }

        if (inherited.Name == "param" || inherited.Name == "typeparam")
        {
            var name = (string)inherited.Attribute("name");
            return member.Elements(inherited.Name).Any(e => (string)e.Attribute("name") == name);
        }

        return false;
    }
}
