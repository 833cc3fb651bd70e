import BurrowTestSupport
import Foundation
import Testing

@testable import BurrowProfile

/// The reader against Python's tomllib (a strict TOML 1.0 reader of the
/// standard library): every shipped profile, every seed of the fuzz corpus
/// and a set of tricky documents must be accepted or refused by both, and
/// read to the same values (dates compared as dates: the reader keeps their
/// text). Known, deliberate differences are left out: Burrow's size and depth
/// limits, a leap second (`23:59:60`, which Python's datetime cannot hold)
/// floats too large for a double (refused here, infinity there) and
/// integers beyond 64 bits (refused here, as TOML asks; Python's are unbounded).
@Suite("TOML reader against tomllib", .requires(.installed("/usr/bin/python3")))
struct TOMLDifferentialTests {
    static let tricky: [String] = [
        "a = 1\nb = 2", "a = 1\na = 2", "[a]\n[a]", "a.b = 1\n[a]", "[fruit]\napple.color = 1\n[fruit.apple]", "[fruit]\napple.color = 1\n[fruit.apple.texture]",
        "a = {}\n[a.b]", "a = { b = 1 }\na.c = 2", "[a.b]\n[a]\nb.c = 1", "[a.b.c]\n[a]\nb.d = 1", "[a.b.c]\n[a]\nb.d = 1\n[a.b]", "a = [1]\n[[a]]",
        "[[a]]\n[a]", "a = 1\n[a]", "[[a]]\nb.c = 1\n[a.b]", "[a]\nb = 1\n[a.b.c]", "a = [{b=1}]\n[[a]]", "[[a.b]]\n[a]\nc = 1", "[[a]]\n[[a.b]]\n[a.b.c]",
        "'a'.\"b\" = 1", "\"\" = 1", "a.\"\".b = 1", "a = 01", "a = 1__0", "a = _1", "a = 1_", "a = 1.", "a = .5", "a = 0x", "a = 0o", "a = +0x1", "a = 0x_1",
        "a = 0b102", "a = 0o8", "a = 9223372036854775807", "a = -9223372036854775808", "a = 9223372036854775808", "a = 0x8000000000000000", "a = 1e5", "a = 1E-5", "a = 1.5e+3",
        "a = 1e5.5", "a = 1.e5", "a = 1_000.000_1", "a = 0.1e-1_0", "a = -0.0", "a = +inf", "a = -nan", "a = infinity", "a = True", "a = hello",
        "a = 1979-05-27", "a = 1979-05-27T07:32:00Z", "a = 1979-05-27t07:32:00z", "a = 1979-05-27 07:32:00.999999-07:00", "a = 07:32:00", "a = 07:32",
        "a = 1979-05-27T07:32", "a = 2023-02-29", "a = 2024-02-29", "a = 1979-13-01", "a = 1979-05-32", "a = 24:00:00", "a = 2000-01-01T00:00:00+24:00",
        "a = 1979-05-27 1", "a = 1979-05-27 # c", "a = [1979-05-27 , 07:32:00]",
        "a = \"\\e\"", "a = \"\\x41\"", "a = \"\\uD800\"", "a = \"\\U00110000\"", "a = \"\\u00e9\\U0001F600\"", "a = \"open", "a = \"line\nend\"",
        "a = '''\nx'''", "a = \"\"\"\r\nx\"\"\"", "a = \"\"\"\\\n\n  x\"\"\"", "a = \"\"\"x \\ y\"\"\"", "a = \"\"\"x\"\"\"\"\"\"", "a = \"\"\"x\"\"\"\"\"", "a = '''x''''",
        "a = { b = 1, }", "a = { b = 1\n}", "a = {b=1,c={d=2}}", "a = [1 2]", "a = [1,,2]", "a = [,]", "a = [\n1,\n# c\n2,\n]", "a = 1 b = 2", "a b = 1",
        "= 1", "a =", "\"\"\"k\"\"\" = 1", "[a", "[[a]", "[ a . b ]\nc = 1", "[a]b = 1", "a = 1\rb = 2", "a = 1\r\nb = 2", "a = 'x\ty'", "a = \"x\u{7f}\"",
        "# only a comment", "", "\n\n", "a = 1 # c\n", "a.b.c = 1\na.b.d = 2", "a = true\nb = false", "a=[[1],[2,[3]]]", "[x]\n[x.y]\n[x.z]",
    ]

    @Test func sameAnswersAsTomllib() throws {
        var docs = Self.tricky
        let fm = FileManager.default
        var dirs = [Fixtures.profilesDirectory, Fixtures.repositoryRoot + "/Tests/Fuzz/Corpus/profile-toml"]
        // A fuzz run's corpus (Scripts/fuzz.sh --out DIR: DIR/profile-toml/corpus), to compare many more.
        let extra = ProcessInfo.processInfo.environment["BURROW_TOML_CORPUS"]
        if let extra { dirs.append(extra) }
        for dir in dirs {
            for name in try fm.contentsOfDirectory(atPath: dir).sorted() where name.hasSuffix(".toml") || dir == extra {
                // Fuzz inputs need not be UTF-8; the reader takes Strings, as burrow does (decoded with replacement).
                docs.append(String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)), as: UTF8.self))
            }
        }
        let ours: [Any] = docs.map { doc in (try? TOMLReader.parse(doc)).map(Self.tagged) ?? NSNull() }
        let input = try JSONSerialization.data(withJSONObject: ["docs": docs, "ours": ours])
        let result = try Subprocess.run(["/usr/bin/python3", "-c", Self.compare], stdin: input)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "[]\n", "documents read differently: \(result.output)")
    }

    /// The value as tomllib's side is normalised: [kind, value].
    static func tagged(_ v: ConfigValue) -> Any {
        switch v {
        case .string(let s): ["str", s]
        case .integer(let i): ["int", i]
        case .float(let d): ["float", d.isNaN ? "nan" : "\(d)"]
        case .bool(let b): ["bool", b]
        case .date: ["date"]
        case .array(let items): ["array", items.map(tagged)]
        case .table(let t): ["table", t.mapValues(tagged)]
        }
    }

    static let compare = #"""
        import datetime, json, math, sys, tomllib
        def norm(v):
            if isinstance(v, bool): return ["bool", v]
            if isinstance(v, int): return ["int", v]
            if isinstance(v, float): return ["float", "nan" if math.isnan(v) else v]
            if isinstance(v, str): return ["str", v]
            if isinstance(v, (datetime.datetime, datetime.date, datetime.time)): return ["date"]
            if isinstance(v, list): return ["array", [norm(x) for x in v]]
            return ["table", {k: norm(x) for k, x in v.items()}]
        def floats(v):
            if v[0] == "float": return ["float", v[1] if v[1] == "nan" else float(v[1])]
            if v[0] == "array": return ["array", [floats(x) for x in v[1]]]
            if v[0] == "table": return ["table", {k: floats(x) for k, x in v[1].items()}]
            return v
        def fits(v):
            if v[0] == "int": return -2**63 <= v[1] < 2**63
            if v[0] == "array": return all(fits(x) for x in v[1])
            if v[0] == "table": return all(fits(x) for x in v[1].values())
            return True
        data = json.load(sys.stdin)
        out = []
        for doc, ours in zip(data["docs"], data["ours"]):
            try:
                theirs = norm(tomllib.loads(doc))
            except tomllib.TOMLDecodeError as e:
                theirs = None
                why = str(e)
            ours = None if ours is None else floats(ours)
            if ours is None and theirs is not None and not fits(theirs):
                continue  # an integer beyond 64 bits: refused here, as TOML asks
            if (ours is None) != (theirs is None) or ours != theirs:
                out.append({"doc": doc, "burrow": ours, "tomllib": theirs if theirs is not None else why})
        print(json.dumps(out))
        """#
}
