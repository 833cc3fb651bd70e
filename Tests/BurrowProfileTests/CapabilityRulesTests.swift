import BurrowProfile
import Foundation
import Testing

/// `[capabilities."<tool>"]`: the networks and time windows a call is checked against.
@Suite struct CapabilityRulesTests {
    @Test("address ranges: IPv4 and IPv6 networks, bare addresses, IPv4-mapped callers; host bits and malformed text refused")
    func addressRanges() throws {
        let ten = try #require(AddressRange("10.0.0.0/8"))
        #expect(ten.contains("10.255.1.2") && !ten.contains("11.0.0.1") && ten.contains("::ffff:10.1.2.3") && !ten.contains("::1") && !ten.contains("not an address"))
        let v6 = try #require(AddressRange("2001:db8::/32"))
        #expect(v6.contains("2001:db8:ffff::1") && !v6.contains("2001:db9::1") && !v6.contains("10.0.0.1"))
        let one = try #require(AddressRange("127.0.0.1"))
        #expect(one.contains("127.0.0.1") && !one.contains("127.0.0.2"))
        let all4 = try #require(AddressRange("0.0.0.0/0"))
        let all6 = try #require(AddressRange("::/0"))
        #expect(all4.contains("203.0.113.9") && all6.contains("::1"))
        let half = try #require(AddressRange("192.0.2.128/25"))
        #expect(half.contains("192.0.2.200") && !half.contains("192.0.2.127"))
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "010.0.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "host", "", "/8", "::1/1x"] {
            #expect(AddressRange(bad) == nil, "\(bad)")
        }
        #expect(ten.description == "10.0.0.0/8" && v6.description == "2001:db8::/32")
    }

    let zone: (String) -> TimeZone? = { TimeZone(identifier: $0) }

    /// An instant in UTC (one that does not parse is the distant past, where no window is).
    func utc(_ text: String) -> Date {
        (try? Date(text, strategy: .iso8601)) ?? .distantPast
    }

    @Test("time windows: days, ranges across the week's end, overnight windows, 24:00, time zones with summer time")
    func timeWindows() throws {
        func window(_ text: String) throws -> (Date) -> Bool {
            let w = try TimeWindow.parse(text).get()
            let tz = try #require(TimeZone(identifier: w.zone))
            return { w.contains($0, in: tz) }
        }
        let office = try window("Mon-Fri 08:00-18:00 Europe/Berlin")
        // 2026-12-07 is a Monday; Berlin is UTC+1 in winter, UTC+2 in summer.
        #expect(office(utc("2026-12-07T07:00:00Z")) && !office(utc("2026-12-07T06:59:00Z")))
        #expect(office(utc("2026-12-07T16:59:00Z")) && !office(utc("2026-12-07T17:00:00Z")))
        #expect(!office(utc("2026-12-06T12:00:00Z")), "a Sunday")
        #expect(office(utc("2026-07-06T06:00:00Z")) && !office(utc("2026-07-06T05:59:00Z")), "summer: UTC+2")
        let night = try window("Fri-Mon 22:00-06:00")  // UTC; Fri, Sat, Sun, Mon nights
        #expect(night(utc("2026-12-11T23:00:00Z")) && night(utc("2026-12-12T05:59:00Z")), "Friday night, into Saturday")
        #expect(night(utc("2026-12-08T05:00:00Z")), "Monday night's end, on Tuesday")
        #expect(!night(utc("2026-12-08T23:00:00Z")) && !night(utc("2026-12-10T05:00:00Z")), "Tuesday, Wednesday nights")
        let weekend = try window("Sat,Sun 00:00-24:00 UTC")
        #expect(weekend(utc("2026-12-13T23:59:00Z")) && !weekend(utc("2026-12-14T00:00:00Z")))
        for bad in [
            "Mon-Fri", "Mon-Fri 8:00-18:00", "Mon-Fri 08:00-18:00 Mars/Olympus", "Mon-Fri 08:00-08:00", "Mon-Fri 24:00-08:00", "Mon-Fri 08:00-18:60", "Mo-Fr 08:00-18:00",
            "Mon-Fri 08:00-18:00 UTC extra", "Mon-Fri-Sat 08:00-18:00", "Mon,,Fri 08:00-18:00", "",
        ] {
            if case .success = TimeWindow.parse(bad) { Issue.record("accepted '\(bad)'") }
        }
    }

    @Test("rules: the first broken one is named; a local caller has no address to check; the policy reads them and refuses what it cannot")
    func rules() throws {
        var r = CapabilityRules()
        r.requiredAuth = ["mtls"]
        r.allowedIPs = [try #require(AddressRange("10.0.0.0/8"))]
        let now = utc("2026-12-07T12:00:00Z")
        #expect(r.refusal(method: "api_key", address: "10.1.1.1", now: now, zone: zone)?.rule == "required_auth")
        #expect(r.refusal(method: "mtls", address: "192.0.2.1", now: now, zone: zone)?.rule == "allowed_ips")
        #expect(r.refusal(method: "mtls", address: "10.1.1.1", now: now, zone: zone) == nil)
        r.requiredAuth = ["local", "mtls"]
        #expect(r.refusal(method: "local", address: nil, now: now, zone: zone) == nil)
        r.timeWindows = [try TimeWindow.parse("Sat-Sun 00:00-24:00").get()]
        #expect(r.refusal(method: "local", address: nil, now: now, zone: zone)?.rule == "time_windows")

        func decode(_ text: String) -> HostPolicy? { try? HostPolicy.decode(try ConfigValue.parse(text, format: .toml, file: "p.toml"), file: "p.toml") }
        let policy = try #require(
            decode(
                "[capabilities.git]\nrequired_auth = [\"mtls\"]\nallowed_ips = [\"10.0.0.0/8\"]\ntime_windows = [\"Mon-Fri 08:00-18:00 Europe/Berlin\"]\nrequests_per_minute = 30\n[capabilities.\"*\"]\nrequired_auth = [\"mtls\", \"local\"]\n"
            ))
        #expect(policy.capabilities["git"]?.requestsPerMinute == 30 && policy.capabilities["*"]?.requiredAuth == ["mtls", "local"])
        let encoded = String(decoding: try JSONEncoder().encode(policy.capabilities["git"]), as: UTF8.self)
        #expect(encoded.contains("\"10.0.0.0\\/8\"") && encoded.contains("Europe\\/Berlin"), "\(encoded)")
        for bad in [
            "required_auth = [\"password\"]", "required_auth = []", "allowed_ips = [\"10.0.0.1/8\"]", "allowed_ips = []", "time_windows = [\"always\"]", "time_windows = []",
            "requests_per_minute = 0", "unknown = 1",
        ] {
            #expect(decode("[capabilities.git]\n" + bad + "\n") == nil, "\(bad)")
        }
        #expect(decode("[capabilities.\"a b\"]\nrequests_per_minute = 1\n") == nil)
    }
}
