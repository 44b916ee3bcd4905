/// An object attribute, encoded as 1.x `Attribute{Name, Value}` or as a 2.0 tagged item.
public enum Attribute: Hashable, Sendable {
    case name(String)
    case objectGroup(String)
    case objectType(ObjectType)
    case state(ObjectState)
    case cryptographicAlgorithm(UInt32)
    case cryptographicLength(Int32)
    case cryptographicUsageMask(Int32)
    case uniqueIdentifier(String)
    case initialDate(Int64)
    case activationDate(Int64)
    case lastChangeDate(Int64)
    /// KMIP 1.4+: the object may not be exported in clear (a server's default is false).
    case sensitive(Bool)
    /// Anything else the server reports, kept as its 1.x name and raw value.
    case other(name: String, value: TTLV)

    /// The 1.x attribute name.
    public var attributeName: String {
        switch self {
        case .name: return "Name"
        case .objectGroup: return "Object Group"
        case .objectType: return "Object Type"
        case .state: return "State"
        case .cryptographicAlgorithm: return "Cryptographic Algorithm"
        case .cryptographicLength: return "Cryptographic Length"
        case .cryptographicUsageMask: return "Cryptographic Usage Mask"
        case .uniqueIdentifier: return "Unique Identifier"
        case .initialDate: return "Initial Date"
        case .activationDate: return "Activation Date"
        case .lastChangeDate: return "Last Change Date"
        case .sensitive: return "Sensitive"
        case .other(let name, _): return name
        }
    }

    public static let tagsByName: [String: Tag] = [
        "Name": .name, "Object Group": .objectGroup, "Object Type": .objectType, "State": .state,
        "Cryptographic Algorithm": .cryptographicAlgorithm, "Cryptographic Length": .cryptographicLength,
        "Cryptographic Usage Mask": .cryptographicUsageMask, "Unique Identifier": .uniqueIdentifier,
        "Initial Date": .initialDate, "Activation Date": .activationDate, "Sensitive": .sensitive,
        "Last Change Date": .lastChangeDate, "Digest": .digest, "Deactivation Date": .deactivationDate,
        "Process Start Date": .processStartDate, "Protect Stop Date": .protectStopDate,
    ]

    /// The lifecycle dates a client may give an object when it registers it (KMIP 1.x §3.25–3.27):
    /// kept as `.other` with a Date-Time value.
    public static let clientDates: Set<String> = ["Process Start Date", "Protect Stop Date"]

    /// The Date-Time value of a date attribute (Initial, Activation, Last Change, or any other
    /// carried as a Date-Time); nil for every other attribute.
    public var dateValue: Int64? {
        switch self {
        case .initialDate(let v), .activationDate(let v), .lastChangeDate(let v): return v
        case .other(_, let value): return value.dateTimeValue
        default: return nil
        }
    }

    /// The value item, tagged as 2.0 tags it (1.x wraps it in Attribute Value).
    public func valueItem(tag: Tag) -> TTLV {
        switch self {
        case .name(let v):
            return .structure(tag, [.text(.nameValue, v), .enumeration(.nameType, KMIPConstant.nameTypeText)])
        case .objectGroup(let v), .uniqueIdentifier(let v): return .text(tag, v)
        case .objectType(let v): return .enumeration(tag, v.rawValue)
        case .state(let v): return .enumeration(tag, v.rawValue)
        case .cryptographicAlgorithm(let v): return .enumeration(tag, v)
        case .cryptographicLength(let v), .cryptographicUsageMask(let v): return .integer(tag, v)
        case .initialDate(let v), .activationDate(let v), .lastChangeDate(let v): return TTLV(tag, .dateTime(v))
        case .sensitive(let v): return .boolean(tag, v)
        case .other(_, let value): return TTLV(tag, value.value)
        }
    }

    /// A custom attribute's 1.x name ("x-Owner": client-defined, "y-…": server-defined) split as
    /// KMIP 2.0 names it: Vendor Identification "x" and Attribute Name "Owner"; nil for others.
    public static func customParts(of name: String) -> (vendor: String, name: String)? {
        guard name.count > 2, name.hasPrefix("x-") || name.hasPrefix("y-") else { return nil }
        return (String(name.prefix(1)), String(name.dropFirst(2)))
    }

    /// The attribute as `version` encodes it.
    public func encoded(for version: ProtocolVersion) -> TTLV {
        if version.usesAttributesStructure {
            if Self.tagsByName[attributeName] == nil, let custom = Self.customParts(of: attributeName) {
                return .structure(.attribute, [.text(.vendorIdentification, custom.vendor), .text(.attributeName, custom.name),
                                               valueItem(tag: .attributeValue)])
            }
            return valueItem(tag: Self.tagsByName[attributeName] ?? .attributeValue)
        }
        return .structure(.attribute, [.text(.attributeName, attributeName), valueItem(tag: .attributeValue)])
    }

    /// Reads a 1.x `Attribute` structure.
    public init?(version1 item: TTLV) {
        guard item.tag == .attribute, let name = item.child(.attributeName)?.textValue,
              let value = item.child(.attributeValue) else { return nil }
        self.init(name: name, value: value)
    }

    /// A KMIP 2.0 Attribute Reference to the attribute `name`: a standard attribute by its tag (an
    /// Enumeration, as PyKMIP sends and expects it), any other by name (a structure).
    public static func reference(named name: String) -> TTLV {
        if let tag = tagsByName[name] { return .enumeration(.attributeReference, tag.rawValue) }
        if let custom = customParts(of: name) {
            return .structure(.attributeReference, [.text(.vendorIdentification, custom.vendor), .text(.attributeName, custom.name)])
        }
        return .structure(.attributeReference, [.text(.attributeName, name)])
    }

    /// The attribute an Attribute Reference names, in either form; nil for a tag this codec does not know.
    public static func name(referencedBy reference: TTLV) -> String? {
        if let name = reference.child(.attributeName)?.textValue {
            if let vendor = reference.child(.vendorIdentification)?.textValue, vendor == "x" || vendor == "y" { return vendor + "-" + name }
            return name
        }
        guard let raw = reference.enumerationValue else { return nil }
        return tagsByName.first { $0.value.rawValue == raw }?.key
    }

    /// Reads a 2.0 tagged attribute.
    public init(version2 item: TTLV) {
        // A vendor attribute: x and y name 1.x's custom attributes ("x-Owner").
        if item.tag == .attribute, let vendor = item.child(.vendorIdentification)?.textValue,
           let name = item.child(.attributeName)?.textValue, let value = item.child(.attributeValue) {
            self = .other(name: vendor == "x" || vendor == "y" ? vendor + "-" + name : vendor + ":" + name, value: value)
            return
        }
        let name = Self.tagsByName.first { $0.value == item.tag }?.key ?? "Tag \(item.tag)"
        // The value tagged Attribute Value, as 1.x carries it: one attribute reads the same from either.
        self.init(name: name, value: TTLV(.attributeValue, item.value))
    }

    public init(name: String, value: TTLV) {
        switch name {
        case "Name":
            if let text = value.child(.nameValue)?.textValue { self = .name(text); return }
        case "Object Group":
            if let text = value.textValue { self = .objectGroup(text); return }
        case "Unique Identifier":
            if let text = value.textValue { self = .uniqueIdentifier(text); return }
        case "Object Type":
            if let raw = value.enumerationValue, let t = ObjectType(rawValue: raw) { self = .objectType(t); return }
        case "State":
            if let raw = value.enumerationValue, let s = ObjectState(rawValue: raw) { self = .state(s); return }
        case "Cryptographic Algorithm":
            if let raw = value.enumerationValue { self = .cryptographicAlgorithm(raw); return }
        case "Cryptographic Length":
            if let v = value.integerValue { self = .cryptographicLength(v); return }
        case "Cryptographic Usage Mask":
            if let v = value.integerValue { self = .cryptographicUsageMask(v); return }
        case "Initial Date":
            if let v = value.dateTimeValue { self = .initialDate(v); return }
        case "Activation Date":
            if let v = value.dateTimeValue { self = .activationDate(v); return }
        case "Last Change Date":
            if let v = value.dateTimeValue { self = .lastChangeDate(v); return }
        case "Sensitive":
            if case .boolean(let v) = value.value { self = .sensitive(v); return }
        default: break
        }
        self = .other(name: name, value: value)
    }

    /// Attributes in the container `version` uses for requests (Template-Attribute or Attributes).
    public static func container(_ attributes: [Attribute], version: ProtocolVersion) -> TTLV {
        if version.usesAttributesStructure {
            return .structure(.attributes, attributes.map { $0.encoded(for: version) })
        }
        return .structure(.templateAttribute, attributes.map { $0.encoded(for: version) })
    }

    /// Attributes from a response payload in either encoding.
    public static func parse(from payload: TTLV) -> [Attribute] {
        var out = payload.all(.attribute).compactMap(Attribute.init(version1:))
        if let structure = payload.child(.attributes) {
            out += structure.children.map(Attribute.init(version2:))
        }
        return out
    }
}
