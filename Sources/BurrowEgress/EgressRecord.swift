public import BurrowPolicy

/// One connection attempt through the proxy, reported when it ends.
public struct EgressRecord: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// Allowed and connected; `reason` says how it ended (closed, reset, idle, budget, sandbox ended).
        case closed(reason: String)
        /// Refused by policy (a PermissionDenied).
        case refused(EgressRefusal)
        /// Allowed, but the destination could not be reached.
        case failed(String)
    }

    /// Numbered from 1 within the sandbox.
    public var connection: Int
    /// `http-connect`, `http`, `socks5`, or `unknown` when refused before the request was read.
    public var protocolName: String
    /// The host as the tool wrote it.
    public var requested: String
    /// After normalisation (nil when it did not normalise).
    public var host: String?
    public var port: UInt16?
    /// The address connected to (the one that was checked).
    public var address: String?
    /// Bytes from the tool to the destination and back.
    public var bytesOut: UInt64
    public var bytesIn: UInt64
    public var milliseconds: UInt64
    public var outcome: Outcome
    /// Cut because the sandbox's byte budget was spent.
    public var budgetCut = false

    public var isDenial: Bool {
        if case .refused(let r) = outcome { return r.isDenial }
        return false
    }
}

/// What one sandbox's proxy did over a run.
public struct EgressSummary: Sendable, Equatable, Codable {
    public var allowed = 0
    public var refused = 0
    public var failed = 0
    public var bytesOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    /// The most connections open at once.
    public var peakConnections = 0
    /// Set when the byte budget ran out: its size.
    public var budgetExhausted: UInt64?

    public init() {}
}
