import TCGStorage

/// The Enterprise SSC's Get and Set (§10.3.3.1–2): columns named by their names, a row's values
/// as a list of rows. Callers keep Opal's column numbers; the names come from the table's layout.
extension OpalSession {
    /// Object.Get [ Cellblock: [ startColumn = "Name", endColumn = "Name" ] ] → [ [ [ Name = value … ] ] ].
    func enterpriseGet(_ object: UID, columns: ClosedRange<UInt64>, operation: String) throws(OpalError) -> [UInt64: TCGValue] {
        let names = try columnNames(of: object, covering: columns, operation: operation)
        let cells: TCGValue = .list([
            .named(.bytes(Array("startColumn".utf8)), .bytes(Array(names[Int(columns.lowerBound)].utf8))),
            .named(.bytes(Array("endColumn".utf8)), .bytes(Array(names[Int(columns.upperBound)].utf8))),
        ])
        let values = try call(object, MethodID.enterpriseGet, [cells], operation: operation)
        // [ [ [ name = value … ] ] ]: the result list, its rows, one row; tolerate a level less.
        var row = values
        while row.count == 1, case .list(let inner) = row[0] { row = inner }
        var out: [UInt64: TCGValue] = [:]
        for case .named(let name, let value) in row {
            guard let bytes = name.bytesValue, let column = names.firstIndex(of: String(decoding: bytes, as: UTF8.self)) else { continue }
            out[UInt64(column)] = value
        }
        return out
    }

    /// Object.Set [ Where: [ ], Values: [ [ Name = value … ] ] ].
    func enterpriseSet(_ object: UID, _ values: [(UInt64, TCGValue)], operation: String) throws(OpalError) {
        guard let first = values.map(\.0).min(), let last = values.map(\.0).max() else { return }
        let names = try columnNames(of: object, covering: first...last, operation: operation)
        let row = TCGValue.list(values.map { .named(.bytes(Array(names[Int($0.0)].utf8)), $0.1) })
        try call(object, MethodID.enterpriseSet, [.list([]), .list([row])], operation: operation)
    }

    private func columnNames(of object: UID, covering columns: ClosedRange<UInt64>, operation: String) throws(OpalError) -> [String] {
        guard let names = Column.Names.of(object), columns.upperBound < UInt64(names.count) else {
            throw OpalError(.invalidState, device: channel.device, operation: operation,
                            "no Enterprise column names for columns \(columns) of \(AuthorityName.of(object))",
                            fix: "this is a bug in sedlock: report it")
        }
        return names
    }
}
