import BurrowProfile
import Testing

@Suite("Values and patterns")
struct PatternTests {
    @Test("componentCount counts what split(separator: \"/\") does, without allocating", arguments: ["/", "", "/a", "/a/b", "//a//b//", "a/b", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/é/ü"])
    func components(_ path: String) {
        #expect(componentCount(path) == path.split(separator: "/").count)
    }

    @Test(arguments: [("512M", UInt64(512 << 20)), ("2G", 2 << 30), ("64K", 64 << 10), ("100", 100), ("1t", 1 << 40)])
    func sizes(_ text: String, _ bytes: UInt64) {
        #expect(ByteSize(parsing: text)?.bytes == bytes)
    }

    @Test(arguments: ["", "M", "12MB", "1.5G", "-1M", "99999999999999999999T", "12MiB"])
    func badSizes(_ text: String) {
        #expect(ByteSize(parsing: text) == nil)
    }

    @Test(arguments: [("30s", UInt64(30_000)), ("5m", 300_000), ("1h", 3_600_000), ("250ms", 250), ("7", 7000)])
    func durations(_ text: String, _ ms: UInt64) {
        #expect(Seconds(parsing: text)?.milliseconds == ms)
    }

    @Test func descriptionsRoundTrip() {
        #expect(ByteSize.mebibytes(512).description == "512M")
        #expect(ByteSize(bytes: 1536).description == "1536")
        #expect(Seconds.seconds(300).description == "5m")
        #expect(Seconds(milliseconds: 1500).description == "1500ms")
    }

    @Test func pathPatterns() throws {
        #expect(try PathPattern.parse("/usr/lib/**").get() == PathPattern(path: "/usr/lib", subtree: true))
        #expect(try PathPattern.parse("/").get() == PathPattern(path: "/"))
        #expect(try PathPattern.parse("/**").get() == PathPattern(path: "/", subtree: true))
        #expect((try? PathPattern.parse("/a/./b").get()) == nil)
        #expect(PathPattern(path: "/srv").covers("/srv/x"))
        #expect(!PathPattern(path: "/srv").covers("/srvx"))
    }

    @Test func commandPatterns() {
        #expect((try? CommandPattern.parse("python3").get()) != nil)
        #expect((try? CommandPattern.parse("/usr/bin/python3.*").get()) != nil)
        #expect((try? CommandPattern.parse("/usr/*/python3").get()) == nil)
        #expect((try? CommandPattern.parse("../bin/sh").get()) == nil)
        #expect((try? CommandPattern.parse("*").get()) == nil)
    }

    @Test func networkTargets() throws {
        #expect(try NetworkTarget.parse("pypi.org:443").get().description == "pypi.org:443")
        #expect(try NetworkTarget.parse("*.example.com:8000-8100").get().host == .suffix("example.com"))
        #expect(try NetworkTarget.parse("[2001:db8::1]:443").get().host == .address("2001:db8::1"))
        #expect(try NetworkTarget.parse("192.0.2.0/24:443").get().host == .network("192.0.2.0", prefix: 24))
        #expect(try NetworkTarget.parse("[2001:db8::/32]:443").get().host == .network("2001:db8::", prefix: 32))
        for bad in ["127.1:80", "010.0.0.1:80", "example.com.:443", "exämple.com:443", "a..b:1", "-a.com:1", "[::1:80", "example.com:0", "example.com:08"] {
            #expect((try? NetworkTarget.parse(bad).get()) == nil, "\(bad) must be refused")
        }
    }

    @Test func environmentPatterns() {
        #expect((try? EnvironmentPattern.parse("LC_*").get()) != nil)
        #expect((try? EnvironmentPattern.parse("GIT_AUTHOR_NAME").get()) != nil)
        for bad in ["LD_LIBRARY_PATH", "LD_*", "GLIBC_TUNABLES", "PYTHONPATH", "BASH_ENV", "NODE_OPTIONS", "PATH", "G*", "1ABC", "A-B"] {
            #expect((try? EnvironmentPattern.parse(bad).get()) == nil, "\(bad) must be refused")
        }
    }
}

@Suite("Disk floors")
struct DiskFloorTests {
    @Test("min_free_disk reads as a share or a size, round-trips, and refuses the rest")
    func parsing() {
        #expect(DiskFloor(parsing: "5%") == .percent(basisPoints: 500))
        #expect(DiskFloor(parsing: "0.5%")?.description == "0.50%")
        #expect(DiskFloor(parsing: "12.25%")?.description == "12.25%")
        #expect(DiskFloor(parsing: "2G") == .size(ByteSize(bytes: 2 << 30)))
        for bad in ["0%", "100%", "5.123%", "%", "-1%", "five", "", "1e3%"] {
            #expect(DiskFloor(parsing: bad) == nil, "\(bad)")
        }
        #expect(DiskFloor.percent(basisPoints: 500).bytes(ofTotal: 1_000_000) == 50_000)
        #expect(DiskFloor.percent(basisPoints: 5000).bytes(ofTotal: UInt64.max / 2) == UInt64.max / 4, "no overflow on a large total")
    }
}
