package import BurrowPolicy

/// One connection attempt through the proxy, reported when it ends.
package struct EgressRecord: Sendable, Equatable {
    package enum Outcome: Sendable, Equatable {
        /// Allowed and connected; `reason` says how it ended (closed, reset, idle, budget, sandbox ended).
        case closed(reason: String)
        /// Refused by policy (a PermissionDenied).
        case refused(EgressRefusal)
        /// Allowed, but the destination could not be reached.
        case failed(String)
    }

    /// Numbered from 1 within the sandbox.
    package var connection: Int
    /// `http-connect`, `http`, `socks5`, or `unknown` when refused before the request was read.
    package var protocolName: String
    /// The host as the tool wrote it.
    package var requested: String
    /// After normalisation (nil when it did not normalise).
    package var host: String?
    package var port: UInt16?
    /// The address connected to (the one that was checked).
    package var address: String?
    /// Bytes from the tool to the destination and back.
    package var bytesOut: UInt64
    package var bytesIn: UInt64
    package var milliseconds: UInt64
    package var outcome: Outcome
    /// Cut because the sandbox's byte budget was spent.
    package var budgetCut = false

    package var isDenial: Bool {
        if case .refused(let r) = outcome { return r.isDenial }
        return false
    }
}

/// What one sandbox's proxy did over a run.
package struct EgressSummary: Sendable, Equatable, Codable {
    package var allowed = 0
    package var refused = 0
    package var failed = 0
    package var bytesOut: UInt64 = 0
    package var bytesIn: UInt64 = 0
    /// The most connections open at once.
    package var peakConnections = 0
    /// Set when the byte budget ran out: its size.
    package var budgetExhausted: UInt64?

    package init() {}
}
