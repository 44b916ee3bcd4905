/// How requests and responses look on the control socket: one key naming the case, its value the
/// payload itself — `{"setup":{"drives":[…]}}`, `{"status":{}}`, `{"array":{"operation":…}}` —
/// never Swift's synthesized `{"setup":{"_0":…}}`, which scripts would have to know about.
/// Cases with named values keep them as the payload's keys (`{"arrayRemove":{"address":…,"revert":false}}`).
struct WireCaseKey: CodingKey {
    let stringValue: String
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

/// The payload of a case without one.
private struct Nothing: Codable {}

private struct Address: Codable { var address: String? }
private struct RequiredAddress: Codable { var address: String }
private struct Names: Codable { var names: [String] }
private struct KeyID: Codable { var keyID: String }
/// `dryRun` is absent on the wire unless asked for (as older sedlocks sent it).
private struct Removal: Codable { var address: String; var revert: Bool; var dryRun: Bool? }
private struct Server: Codable { var server: String }

/// The one case key of a wire object, or why there is not exactly one.
private func onlyCase(_ container: KeyedDecodingContainer<WireCaseKey>, of type: String) throws -> WireCaseKey {
    guard container.allKeys.count == 1, let key = container.allKeys.first else {
        throw DecodingError.dataCorrupted(DecodingError.Context(
            codingPath: container.codingPath, debugDescription: "a \(type) names exactly one case, found \(container.allKeys.count)"))
    }
    return key
}

private func unknownCase(_ key: WireCaseKey, _ container: KeyedDecodingContainer<WireCaseKey>, of type: String) -> DecodingError {
    .dataCorrupted(DecodingError.Context(codingPath: container.codingPath + [key],
                                         debugDescription: "unknown \(type) \(key.stringValue.prefix(64))"))
}

extension ControlRequest {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireCaseKey.self)
        let key = try onlyCase(c, of: "request")
        func payload<T: Decodable>(_ type: T.Type) throws -> T { try c.decode(type, forKey: key) }
        switch key.stringValue {
        case "setup": self = .setup(try payload(SetupRequest.self))
        case "unlock": self = .unlock(try payload(UnlockRequest.self))
        case "lock": self = .lock(try payload(LockRequest.self))
        case "status": _ = try payload(Nothing.self); self = .status
        case "guardStatus": self = .guardStatus(address: try payload(Address.self).address)
        case "guardReset": self = .guardReset(address: try payload(RequiredAddress.self).address)
        case "keyServerAdd": self = .keyServerAdd(try payload(KeyServerAddRequest.self))
        case "keyServersAdd": self = .keyServersAdd(try payload([KeyServerAddRequest].self))
        case "keyServerModify": self = .keyServerModify(try payload(KeyServerModifyRequest.self))
        case "keyServerRemove": self = .keyServerRemove(names: try payload(Names.self).names)
        case "keyServerShow": _ = try payload(Nothing.self); self = .keyServerShow
        case "keyServerStatus": _ = try payload(Nothing.self); self = .keyServerStatus
        case "keyServerQuery": _ = try payload(Nothing.self); self = .keyServerQuery
        case "keysList": _ = try payload(Nothing.self); self = .keysList
        case "keysRestore": self = .keysRestore(try payload(KeysRestoreRequest.self))
        case "keysRetire": self = .keysRetire(keyID: try payload(KeyID.self).keyID)
        case "keysDestroy": self = .keysDestroy(keyID: try payload(KeyID.self).keyID)
        case "recover": self = .recover(try payload(RecoverRequest.self))
        case "rekey": self = .rekey(try payload(RekeyRequest.self))
        case "arrayAdd": self = .arrayAdd(try payload(ArrayAddRequest.self))
        case "arrayRemove":
            let removal = try payload(Removal.self)
            self = .arrayRemove(address: removal.address, revert: removal.revert, dryRun: removal.dryRun == true)
        case "erase": self = .erase(try payload(EraseRequest.self))
        case "faults": _ = try payload(Nothing.self); self = .faults
        case "rdlTest": self = .rdlTest(server: try payload(Server.self).server)
        case "rdlEnable": self = .rdlEnable(try payload(RDLEnableRequest.self))
        case "rdlStatus": _ = try payload(Nothing.self); self = .rdlStatus
        case "rdlRotate": _ = try payload(Nothing.self); self = .rdlRotate
        case "rdlDisable": _ = try payload(Nothing.self); self = .rdlDisable
        case "reload": _ = try payload(Nothing.self); self = .reload
        default: throw unknownCase(key, c, of: "request")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireCaseKey.self)
        let key = WireCaseKey(name)
        switch self {
        case .setup(let v): try c.encode(v, forKey: key)
        case .unlock(let v): try c.encode(v, forKey: key)
        case .lock(let v): try c.encode(v, forKey: key)
        case .guardStatus(let address): try c.encode(Address(address: address), forKey: key)
        case .guardReset(let address): try c.encode(RequiredAddress(address: address), forKey: key)
        case .keyServerAdd(let v): try c.encode(v, forKey: key)
        case .keyServersAdd(let v): try c.encode(v, forKey: key)
        case .keyServerModify(let v): try c.encode(v, forKey: key)
        case .keyServerRemove(let names): try c.encode(Names(names: names), forKey: key)
        case .keysRestore(let v): try c.encode(v, forKey: key)
        case .keysRetire(let keyID), .keysDestroy(let keyID): try c.encode(KeyID(keyID: keyID), forKey: key)
        case .recover(let v): try c.encode(v, forKey: key)
        case .rekey(let v): try c.encode(v, forKey: key)
        case .arrayAdd(let v): try c.encode(v, forKey: key)
        case .arrayRemove(let address, let revert, let dryRun):
            try c.encode(Removal(address: address, revert: revert, dryRun: dryRun ? true : nil), forKey: key)
        case .erase(let v): try c.encode(v, forKey: key)
        case .rdlTest(let server): try c.encode(Server(server: server), forKey: key)
        case .rdlEnable(let v): try c.encode(v, forKey: key)
        case .status, .keyServerShow, .keyServerStatus, .keyServerQuery, .keysList, .faults, .rdlStatus, .rdlRotate, .rdlDisable, .reload:
            try c.encode(Nothing(), forKey: key)
        }
    }

    /// The case's name on the wire (and in logs: never its values).
    public var name: String {
        switch self {
        case .setup: "setup"
        case .unlock: "unlock"
        case .lock: "lock"
        case .status: "status"
        case .guardStatus: "guardStatus"
        case .guardReset: "guardReset"
        case .keyServerAdd: "keyServerAdd"
        case .keyServersAdd: "keyServersAdd"
        case .keyServerModify: "keyServerModify"
        case .keyServerRemove: "keyServerRemove"
        case .keyServerShow: "keyServerShow"
        case .keyServerStatus: "keyServerStatus"
        case .keyServerQuery: "keyServerQuery"
        case .keysList: "keysList"
        case .keysRestore: "keysRestore"
        case .keysRetire: "keysRetire"
        case .keysDestroy: "keysDestroy"
        case .recover: "recover"
        case .rekey: "rekey"
        case .arrayAdd: "arrayAdd"
        case .arrayRemove: "arrayRemove"
        case .erase: "erase"
        case .faults: "faults"
        case .rdlTest: "rdlTest"
        case .rdlEnable: "rdlEnable"
        case .rdlStatus: "rdlStatus"
        case .rdlRotate: "rdlRotate"
        case .rdlDisable: "rdlDisable"
        case .reload: "reload"
        }
    }
}

extension ControlRequest {
    /// The request as the CLI command that sends it ("keyserver add"), for logs and messages: the
    /// wire name is a protocol identifier, not words.
    public var words: String {
        switch self {
        case .setup: "setup"
        case .unlock: "unlock"
        case .lock: "lock"
        case .status: "status"
        case .guardStatus: "guard status"
        case .guardReset: "guard reset"
        case .keyServerAdd, .keyServersAdd: "keyserver add"
        case .keyServerModify: "keyserver modify"
        case .keyServerRemove: "keyserver remove"
        case .keyServerShow: "keyserver show"
        case .keyServerStatus: "keyserver status"
        case .keyServerQuery: "keyserver query"
        case .keysList: "keys list"
        case .keysRestore: "keys restore"
        case .keysRetire: "keys retire"
        case .keysDestroy: "keys destroy"
        case .recover: "recover"
        case .rekey: "rekey"
        case .arrayAdd: "array add"
        case .arrayRemove: "array remove"
        case .erase: "erase"
        case .faults: "faults"
        case .rdlTest: "rdl test"
        case .rdlEnable: "rdl enable"
        case .rdlStatus: "rdl status"
        case .rdlRotate: "rdl rotate"
        case .rdlDisable: "rdl disable"
        case .reload: "reload"
        }
    }
}

extension ControlResponse {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireCaseKey.self)
        let key = try onlyCase(c, of: "response")
        func payload<T: Decodable>(_ type: T.Type) throws -> T { try c.decode(type, forKey: key) }
        switch key.stringValue {
        case "array": self = .array(try payload(ArrayReport.self))
        case "status": self = .status(try payload(StatusReport.self))
        case "guardState": self = .guardState(try payload(GuardReport.self))
        case "keyServers": self = .keyServers(try payload(KeyServerReport.self))
        case "keys": self = .keys(try payload(KeysReport.self))
        case "faults": self = .faults(try payload(FaultReport.self))
        case "rdl": self = .rdl(try payload(RDLReport.self))
        case "reloaded": self = .reloaded(try payload(ReloadReport.self))
        case "failure": self = .failure(try payload(ControlError.self))
        default: throw unknownCase(key, c, of: "response")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireCaseKey.self)
        switch self {
        case .array(let v): try c.encode(v, forKey: WireCaseKey("array"))
        case .status(let v): try c.encode(v, forKey: WireCaseKey("status"))
        case .guardState(let v): try c.encode(v, forKey: WireCaseKey("guardState"))
        case .keyServers(let v): try c.encode(v, forKey: WireCaseKey("keyServers"))
        case .keys(let v): try c.encode(v, forKey: WireCaseKey("keys"))
        case .faults(let v): try c.encode(v, forKey: WireCaseKey("faults"))
        case .rdl(let v): try c.encode(v, forKey: WireCaseKey("rdl"))
        case .reloaded(let v): try c.encode(v, forKey: WireCaseKey("reloaded"))
        case .failure(let v): try c.encode(v, forKey: WireCaseKey("failure"))
        }
    }
}
