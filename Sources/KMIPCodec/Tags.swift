/// The KMIP tags sedlock reads and writes (KMIP 1.x §9.1.3.1 and 2.0).
extension Tag {
    public static let activationDate = Tag(0x42_0001)
    public static let attribute = Tag(0x42_0008)
    public static let attributeIndex = Tag(0x42_0009)
    public static let attributeName = Tag(0x42_000A)
    public static let attributeValue = Tag(0x42_000B)
    public static let authentication = Tag(0x42_000C)
    public static let batchCount = Tag(0x42_000D)
    public static let batchErrorContinuationOption = Tag(0x42_000E)
    public static let batchItem = Tag(0x42_000F)
    public static let compromiseOccurrenceDate = Tag(0x42_0021)
    public static let credential = Tag(0x42_0023)
    public static let cryptographicAlgorithm = Tag(0x42_0028)
    public static let cryptographicLength = Tag(0x42_002A)
    public static let cryptographicUsageMask = Tag(0x42_002C)
    public static let deactivationDate = Tag(0x42_002F)
    public static let initialDate = Tag(0x42_0039)
    public static let sensitive = Tag(0x42_0120)
    public static let key = Tag(0x42_003F)
    public static let keyBlock = Tag(0x42_0040)
    public static let keyFormatType = Tag(0x42_0042)
    public static let lastChangeDate = Tag(0x42_0048)
    public static let leaseTime = Tag(0x42_0049)
    public static let digest = Tag(0x42_0034)
    public static let digestValue = Tag(0x42_0035)
    public static let hashingAlgorithm = Tag(0x42_0038)
    public static let keyMaterial = Tag(0x42_0043)
    public static let keyValue = Tag(0x42_0045)
    public static let keyWrappingData = Tag(0x42_0046)
    public static let maximumItems = Tag(0x42_004F)
    public static let maximumResponseSize = Tag(0x42_0050)
    public static let name = Tag(0x42_0053)
    public static let nameType = Tag(0x42_0054)
    public static let nameValue = Tag(0x42_0055)
    public static let objectGroup = Tag(0x42_0056)
    public static let objectType = Tag(0x42_0057)
    public static let opaqueDataType = Tag(0x42_0059)
    public static let opaqueDataValue = Tag(0x42_005A)
    public static let opaqueObject = Tag(0x42_005B)
    public static let operation = Tag(0x42_005C)
    public static let processStartDate = Tag(0x42_0067)
    public static let protectStopDate = Tag(0x42_0068)
    public static let protocolVersion = Tag(0x42_0069)
    public static let protocolVersionMajor = Tag(0x42_006A)
    public static let protocolVersionMinor = Tag(0x42_006B)
    public static let queryFunction = Tag(0x42_0074)
    public static let requestHeader = Tag(0x42_0077)
    public static let requestMessage = Tag(0x42_0078)
    public static let requestPayload = Tag(0x42_0079)
    public static let responseHeader = Tag(0x42_007A)
    public static let responseMessage = Tag(0x42_007B)
    public static let responsePayload = Tag(0x42_007C)
    public static let resultMessage = Tag(0x42_007D)
    public static let resultReason = Tag(0x42_007E)
    public static let resultStatus = Tag(0x42_007F)
    public static let revocationMessage = Tag(0x42_0080)
    public static let revocationReason = Tag(0x42_0081)
    public static let revocationReasonCode = Tag(0x42_0082)
    public static let secretData = Tag(0x42_0085)
    public static let secretDataType = Tag(0x42_0086)
    public static let serverInformation = Tag(0x42_0088)
    public static let state = Tag(0x42_008D)
    public static let storageStatusMask = Tag(0x42_008E)
    public static let symmetricKey = Tag(0x42_008F)
    public static let templateAttribute = Tag(0x42_0091)
    public static let timeStamp = Tag(0x42_0092)
    public static let uniqueBatchItemID = Tag(0x42_0093)
    public static let uniqueIdentifier = Tag(0x42_0094)
    public static let usageLimitsCount = Tag(0x42_0096)
    public static let vendorIdentification = Tag(0x42_009D)
    public static let offsetItems = Tag(0x42_00D4)
    public static let locatedItems = Tag(0x42_00D5)
    public static let clientCorrelationValue = Tag(0x42_0105)
    public static let attributes = Tag(0x42_0125)
    public static let attributeReference = Tag(0x42_013B)
    public static let currentAttribute = Tag(0x42_013C)
    public static let newAttribute = Tag(0x42_013D)
}

/// KMIP operations.
public struct Operation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let create = Operation(rawValue: 0x01)
    public static let createKeyPair = Operation(rawValue: 0x02)
    public static let register = Operation(rawValue: 0x03)
    public static let locate = Operation(rawValue: 0x08)
    public static let check = Operation(rawValue: 0x09)
    public static let get = Operation(rawValue: 0x0A)
    public static let getAttributes = Operation(rawValue: 0x0B)
    public static let getAttributeList = Operation(rawValue: 0x0C)
    public static let addAttribute = Operation(rawValue: 0x0D)
    public static let modifyAttribute = Operation(rawValue: 0x0E)
    public static let deleteAttribute = Operation(rawValue: 0x0F)
    public static let activate = Operation(rawValue: 0x12)
    public static let revoke = Operation(rawValue: 0x13)
    public static let destroy = Operation(rawValue: 0x14)
    public static let query = Operation(rawValue: 0x18)
    public static let discoverVersions = Operation(rawValue: 0x1E)
    public static let setAttribute = Operation(rawValue: 0x31)

    public var description: String {
        switch rawValue {
        case 0x01: return "Create"
        case 0x02: return "CreateKeyPair"
        case 0x03: return "Register"
        case 0x08: return "Locate"
        case 0x09: return "Check"
        case 0x0A: return "Get"
        case 0x0B: return "GetAttributes"
        case 0x0C: return "GetAttributeList"
        case 0x0D: return "AddAttribute"
        case 0x0E: return "ModifyAttribute"
        case 0x0F: return "DeleteAttribute"
        case 0x12: return "Activate"
        case 0x13: return "Revoke"
        case 0x14: return "Destroy"
        case 0x18: return "Query"
        case 0x1E: return "DiscoverVersions"
        case 0x31: return "SetAttribute"
        default: return "Operation(0x\(String(rawValue, radix: 16)))"
        }
    }
}

public enum ResultStatus: UInt32, Sendable, Hashable {
    case success = 0, operationFailed = 1, operationPending = 2, operationUndone = 3
}

/// Result reasons (1.x values; 2.0 additions included).
public struct ResultReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let itemNotFound = ResultReason(rawValue: 0x01)
    public static let responseTooLarge = ResultReason(rawValue: 0x02)
    public static let authenticationNotSuccessful = ResultReason(rawValue: 0x03)
    public static let invalidMessage = ResultReason(rawValue: 0x04)
    public static let operationNotSupported = ResultReason(rawValue: 0x05)
    public static let missingData = ResultReason(rawValue: 0x06)
    public static let invalidField = ResultReason(rawValue: 0x07)
    public static let featureNotSupported = ResultReason(rawValue: 0x08)
    public static let cryptographicFailure = ResultReason(rawValue: 0x0A)
    public static let illegalOperation = ResultReason(rawValue: 0x0B)
    public static let permissionDenied = ResultReason(rawValue: 0x0C)
    public static let objectArchived = ResultReason(rawValue: 0x0D)
    public static let generalFailure = ResultReason(rawValue: 0x100)

    public var description: String {
        switch rawValue {
        case 0x01: return "Item Not Found"
        case 0x02: return "Response Too Large"
        case 0x03: return "Authentication Not Successful"
        case 0x04: return "Invalid Message"
        case 0x05: return "Operation Not Supported"
        case 0x06: return "Missing Data"
        case 0x07: return "Invalid Field"
        case 0x08: return "Feature Not Supported"
        case 0x0A: return "Cryptographic Failure"
        case 0x0B: return "Illegal Operation"
        case 0x0C: return "Permission Denied"
        case 0x0D: return "Object Archived"
        case 0x35: return "Non-Unique Name"
        case 0x36: return "Object Destroyed"
        case 0x37: return "Object Not Found"
        case 0x3F: return "Unsupported Protocol Version"
        case 0x43: return "Wrong Key Lifecycle State"
        case 0x100: return "General Failure"
        default: return "Result Reason 0x\(String(rawValue, radix: 16))"
        }
    }
}

public enum ObjectType: UInt32, Sendable, Hashable, Codable, CaseIterable {
    case certificate = 1, symmetricKey = 2, publicKey = 3, privateKey = 4, splitKey = 5, template = 6,
         secretData = 7, opaqueData = 8

    public var name: String {
        switch self {
        case .certificate: return "Certificate"
        case .symmetricKey: return "SymmetricKey"
        case .publicKey: return "PublicKey"
        case .privateKey: return "PrivateKey"
        case .splitKey: return "SplitKey"
        case .template: return "Template"
        case .secretData: return "SecretData"
        case .opaqueData: return "OpaqueData"
        }
    }
}

public enum ObjectState: UInt32, Sendable, Hashable, Codable, CaseIterable {
    case preActive = 1, active = 2, deactivated = 3, compromised = 4, destroyed = 5, destroyedCompromised = 6

    public var name: String {
        switch self {
        case .preActive: return "PreActive"
        case .active: return "Active"
        case .deactivated: return "Deactivated"
        case .compromised: return "Compromised"
        case .destroyed: return "Destroyed"
        case .destroyedCompromised: return "DestroyedCompromised"
        }
    }
}

public enum RevocationReasonCode: UInt32, Sendable, Hashable, CaseIterable {
    case unspecified = 1, keyCompromise = 2, caCompromise = 3, affiliationChanged = 4, superseded = 5,
         cessationOfOperation = 6, privilegeWithdrawn = 7
}

public enum QueryFunction: UInt32, Sendable, Hashable {
    case operations = 1, objects = 2, serverInformation = 3
}

/// Assorted enumeration values used in payloads.
public enum KMIPConstant {
    public static let secretDataTypePassword: UInt32 = 1
    public static let keyFormatRaw: UInt32 = 1
    public static let keyFormatOpaque: UInt32 = 2
    /// Transparent Symmetric Key: the Key Material is a structure holding the Key bytes.
    public static let keyFormatTransparentSymmetric: UInt32 = 7
    public static let hashingAlgorithmSHA256: UInt32 = 6
    public static let algorithmAES: UInt32 = 3
    public static let usageEncrypt: Int32 = 0x04
    public static let usageDecrypt: Int32 = 0x08
    public static let nameTypeText: UInt32 = 1
}
