package import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The MCP security ADR's fine-grained authorization, per tool
/// (`[capabilities."<tool id>"]`, and `[capabilities."*"]` for every tool):
/// how a caller must have authenticated, the addresses a remote caller may
/// come from, the times the tool may be called, and a rate per caller. A
/// call must pass every rule of the tool's table and of `"*"`; a refusal
/// names the rule.
package struct CapabilityRules: Sendable, Equatable, Codable {
    /// How a caller authenticated: `local` (the Unix socket, by its uid),
    /// or a remote method (`mtls`, `api_key`, `signed_key`, `jwt`).
    package static let methods = ["local", "mtls", "api_key", "signed_key", "jwt"]

    /// The methods a caller may have used; nil: any.
    package var requiredAuth: [String]?
    /// The networks a remote caller's address must be in; nil: any. (A
    /// local caller has no address: `required_auth` governs it.)
    package var allowedIPs: [AddressRange]?
    /// When the tool may be called; nil: always.
    package var timeWindows: [TimeWindow]?
    /// Calls of this tool one caller may make per minute (a token bucket
    /// with a burst of a sixth of it, at least 1); nil: no such limit.
    package var requestsPerMinute: Int?

    package init() {}

    /// The first rule a call breaks, with why; nil when it passes them all.
    /// `zone` resolves a window's time zone (Foundation's, with the tz
    /// database: burrowd's); a zone it cannot resolve passes no window.
    package func refusal(method: String, address: String?, now: Date, zone: (String) -> TimeZone?) -> (rule: String, message: String)? {
        if let requiredAuth, !requiredAuth.contains(method) {
            return ("required_auth", "authenticated by \(method); this tool needs \(requiredAuth.joined(separator: " or "))")
        }
        if let allowedIPs, let address {
            guard allowedIPs.contains(where: { $0.contains(address) }) else {
                return ("allowed_ips", "\(address) is in none of \(allowedIPs.map(\.description).joined(separator: ", "))")
            }
        }
        if let timeWindows, !timeWindows.contains(where: { window in zone(window.zone).map { window.contains(now, in: $0) } ?? false }) {
            return ("time_windows", "outside \(timeWindows.map(\.description).joined(separator: ", "))")
        }
        return nil
    }
}

/// An IPv4 or IPv6 network, `192.0.2.0/24` or `2001:db8::/32` (a bare
/// address is its own /32 or /128). An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.7`) is matched as the IPv4 address it is.
package struct AddressRange: Sendable, Hashable, Codable, CustomStringConvertible {
    package var bytes: [UInt8]
    package var prefix: Int

    package var description: String {
        var out = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, bytes, &out, socklen_t(out.count)) != nil else { return "?" }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefix)"
    }

    /// Nil unless `text` is an address or a network whose host bits are zero.
    package init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.address(String(parts[0])) else { return nil }
        bytes = address
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber), let p = Int(parts[1]), p <= address.count * 8 else { return nil }
            prefix = p
        } else {
            prefix = address.count * 8
        }
        guard Self.masked(bytes, prefix) == bytes else { return nil }
    }

    /// The range `text` writes, or why it is none.
    package static func parse(_ text: String) -> Result<AddressRange, PatternError> {
        AddressRange(text).map { .success($0) }
            ?? .failure("expected an address or a network with its host bits zero, such as \"10.0.0.0/8\" or \"2001:db8::/32\" (found '\(text)')")
    }

    /// Written as in the policy file.
    package init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let range = AddressRange(text) else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected an address or a network")) }
        self = range
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Whether `address` (an address literal) is in this network.
    package func contains(_ address: String) -> Bool {
        guard let other = Self.address(address), other.count == bytes.count else { return false }
        return Self.masked(other, prefix) == bytes
    }

    /// An address literal's bytes: 4 for IPv4 (also when written IPv4-mapped), 16 for IPv6.
    static func address(_ text: String) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if text.contains(":") {
            guard inet_pton(AF_INET6, text, &buffer) == 1 else { return nil }
            if buffer[0..<10].allSatisfy({ $0 == 0 }) && buffer[10] == 0xff && buffer[11] == 0xff { return Array(buffer[12...]) }
            return buffer
        }
        guard inet_pton(AF_INET, text, &buffer) == 1 else { return nil }
        return Array(buffer[0..<4])
    }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { i, b in
            let bits = max(0, min(8, prefix - i * 8))
            return bits == 8 ? b : b & ~(UInt8(0xff) >> bits)
        }
    }
}

/// When a tool may be called: days of the week, a time of day range and a
/// time zone, written `"Mon-Fri 08:00-18:00 Europe/Berlin"` (days: `Mon`…
/// `Sun`, a range or a comma list; the zone: an IANA name, `UTC` when
/// omitted). The range includes its start and excludes its end; `24:00`
/// ends at midnight; an end before the start runs past midnight, into the
/// next day (the window belongs to the day it starts on).
package struct TimeWindow: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Days it starts on, 1 (Monday) to 7 (Sunday).
    package var days: Set<Int>
    /// Minutes after midnight.
    package var start: Int
    package var end: Int
    package var zone: String
    /// As written.
    package var description: String

    private init(days: Set<Int>, start: Int, end: Int, zone: String, description: String) {
        (self.days, self.start, self.end, self.zone, self.description) = (days, start, end, zone, description)
    }

    static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    /// Nil, with why, unless `text` is a window.
    package static func parse(_ text: String) -> Result<TimeWindow, PatternError> {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 2 || fields.count == 3 else { return .failure("expected DAYS HH:MM-HH:MM [ZONE], such as \"Mon-Fri 08:00-18:00 Europe/Berlin\"") }
        var days = Set<Int>()
        for item in fields[0].lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            let ends = item.split(separator: "-", omittingEmptySubsequences: false).map { dayNames.firstIndex(of: String($0)) }
            guard (1...2).contains(ends.count), let first = ends.first ?? nil, let last = ends.last ?? nil else {
                return .failure("'\(item)' is not a day or a range of days (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
            }
            var d = first
            while true {
                days.insert(d + 1)
                if d == last { break }
                d = (d + 1) % 7
            }
        }
        let times = fields[1].split(separator: "-", omittingEmptySubsequences: false)
        guard times.count == 2, let start = minutes(times[0], allowing24: false), let end = minutes(times[1], allowing24: true), start != end else {
            return .failure("'\(fields[1])' is not a time range HH:MM-HH:MM (24-hour, start and end differ)")
        }
        let zone = fields.count == 3 ? String(fields[2]) : "UTC"
        guard isZone(zone) else { return .failure("'\(zone)' is not a time zone of this host's tz database (an IANA name, such as Europe/Berlin)") }
        return .success(TimeWindow(days: days, start: start, end: end, zone: zone, description: text))
    }

    static func minutes(_ text: Substring, allowing24: Bool) -> Int? {
        let hm = text.split(separator: ":", omittingEmptySubsequences: false)
        guard hm.count == 2, hm.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }), let h = Int(hm[0]), let m = Int(hm[1]), m < 60 else {
            return nil
        }
        guard h < 24 || (allowing24 && h == 24 && m == 0) else { return nil }
        return h * 60 + m
    }

    /// Written as in the policy file.
    package init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch Self.parse(text) {
        case .success(let window): self = window
        case .failure(let e): throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.message))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Whether `name` is UTC or a zone of the tz database (a TZif file
    /// below /usr/share/zoneinfo). Checked here, where the programs that
    /// read the policy may have no time zone data of their own; burrowd
    /// resolves the zone when it starts.
    static func isZone(_ name: String) -> Bool {
        if name == "UTC" { return true }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard name.utf8.count <= 64, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_+-".contains($0)) } })
        else { return false }
        let fd = open("/usr/share/zoneinfo/" + name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 4)
        return read(fd, &magic, 4) == 4 && magic == Array("TZif".utf8)
    }

    /// Whether `date` falls in the window, read in `timeZone` (its zone's).
    package func contains(_ date: Date, in timeZone: TimeZone) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let day = (weekday + 5) % 7 + 1  // Calendar: 1 is Sunday; here 1 is Monday
        let now = hour * 60 + minute
        if start < end { return days.contains(day) && now >= start && now < end }
        let yesterday = (day + 5) % 7 + 1
        return (days.contains(day) && now >= start) || (days.contains(yesterday) && now < end)
    }
}
