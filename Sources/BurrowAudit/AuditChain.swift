import BurrowCrypto

/// The hash chain: `hash(n) = SHA-256(hash(n-1) ‖ encoding(n))`, starting
/// from 32 zero bytes (or a pruning checkpoint's hash). Any edited,
/// deleted, inserted or reordered row breaks a link `burrow audit verify` checks.
package enum AuditChain {
    package static let genesis = [UInt8](repeating: 0, count: 32)

    static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] { SHA256.hash(bytes) }

    static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    /// A row's fields as stored: exactly what the hash covers.
    struct Row {
        var sequence: Int64
        var time: Int64
        var tool: [UInt8]
        var type: [UInt8]
        var principal: [UInt8]
        var uid: Int64?
        var invocation: [UInt8]?
        var profileDigest: [UInt8]?
        var sandboxLevel: [UInt8]?
        var host: [UInt8]
        var details: [UInt8]
        /// A reported event's origin; nil (every event Burrow witnessed) adds no field, so rows written before origins existed hash as they did.
        var origin: [UInt8]? = nil
    }

    /// The canonical encoding: a version tag, then each field as a 4-byte
    /// big-endian length (0xFFFFFFFF for NULL) and its bytes. Integers are
    /// decimal text. Unambiguous whatever bytes a field holds.
    static func encode(_ row: Row) -> [UInt8] {
        var out = Array("burrow-audit-1".utf8)
        out.reserveCapacity(out.count + row.details.count + 256)
        func field(_ bytes: [UInt8]?) {
            guard let bytes else {
                out += [0xFF, 0xFF, 0xFF, 0xFF]
                return
            }
            let n = UInt32(bytes.count)
            out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            out += bytes
        }
        field(Array(String(row.sequence).utf8))
        field(Array(String(row.time).utf8))
        field(row.tool)
        field(row.type)
        field(row.principal)
        field(row.uid.map { Array(String($0).utf8) })
        field(row.invocation)
        field(row.profileDigest)
        field(row.sandboxLevel)
        field(row.host)
        field(row.details)
        if let origin = row.origin { field(origin) }
        return out
    }

    static func link(previous: [UInt8], row: Row) -> [UInt8] {
        sha256(previous + encode(row))
    }

    /// A pruning checkpoint: which prefix of the chain was cut, chained to the previous checkpoint.
    struct Checkpoint {
        var id: Int64
        var time: Int64
        var throughSequence: Int64
        var throughHash: [UInt8]
        var deleted: Int64
        var previous: [UInt8]
    }

    static func link(_ c: Checkpoint) -> [UInt8] {
        var out = c.previous + Array("burrow-audit-checkpoint-1".utf8)
        for n in [c.id, c.time, c.throughSequence, c.deleted] { out += Array("\(n);".utf8) }
        out += c.throughHash
        return sha256(out)
    }
}
