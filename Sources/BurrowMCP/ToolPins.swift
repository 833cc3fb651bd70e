import BurrowCrypto
package import BurrowJSON
import Synchronization

/// An MCP server's approved tool definitions ("pins"): what each tool it
/// lists says it is (the whole tool object: its name, title, description,
/// input and output schemas, annotations, `_meta`, icons), as an operator
/// approved it. A tool listed with a
/// definition that differs, or one not pinned at all, is withheld from the
/// client and its calls are refused until the new definition is approved:
/// a server cannot rewrite a tool's description to steer the assistant, or
/// slip in a new tool, behind the operator's back. A tool no longer listed
/// is simply gone.
package struct ToolPins: Sendable, Equatable {
    package static let formatVersion = 1
    /// The fields a refusal may name (any other is counted, never named:
    /// its name is the server's text).
    package static let namedFields = ["name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta", "icons"]

    /// The tool id of the server.
    package var server: String
    /// Tool name → its definition (the tool object) as approved.
    package var tools: [String: JSON]

    package init(server: String, tools: [String: JSON]) {
        self.server = server
        self.tools = tools
    }

    /// A tool object from tools/list as it is pinned: whole (any field a
    /// client reads can steer it), or null when it is not an object.
    package static func definition(_ tool: JSON) -> JSON {
        guard case .object = tool else { return .null }
        return tool
    }

    /// `sha256:` over a definition's canonical JSON.
    package static func digest(_ definition: JSON) -> String { SHA256.label(Array(definition.canonicalText.utf8)) }

    /// `sha256:` over the whole set (names and digests, sorted): a rename changes it.
    package var setDigest: String {
        SHA256.label(Array(tools.keys.sorted().map { "\($0)\u{0}\(Self.digest(tools[$0] ?? .null))\n" }.joined().utf8))
    }

    /// Why a listed tool is withheld.
    package struct Difference: Sendable, Equatable {
        package var name: String
        /// `new` (not pinned) or `changed`.
        package var change: String
        /// `field: before → after`, for each field that differs (each side cut to 200 characters).
        package var diff: [String]
        /// The digest of the definition as listed now.
        package var digest: String
        /// The fields that differ (a new tool: none).
        package var fields: [String] = []
    }

    /// How `tool` (a tools/list entry) differs from its pin; nil when it is pinned as it is.
    package func difference(_ tool: JSON) -> Difference? {
        let now = Self.definition(tool)
        let name = now["name"]?.stringValue ?? ""
        guard let pinned = tools[name] else {
            return Difference(name: name, change: "new", diff: ["not among the \(tools.count) approved tools"], digest: Self.digest(now))
        }
        guard pinned != now else { return nil }
        var diff: [String] = []
        var fields: [String] = []
        func keys(_ value: JSON) -> Set<String> { if case .object(let m) = value { Set(m.keys) } else { [] } }
        let keys = keys(pinned).union(keys(now)).sorted()
        for field in keys where pinned[field] != now[field] {
            fields.append(field)
            diff.append("\(field): \(Self.shown(pinned[field])) → \(Self.shown(now[field]))")
        }
        return Difference(name: name, change: "changed", diff: diff, digest: Self.digest(now), fields: fields)
    }

    static func shown(_ value: JSON?) -> String {
        guard let value else { return "(none)" }
        let text = value.canonicalText
        return text.count <= 200 ? text : String(text.prefix(200)) + "…"
    }

    // MARK: the file

    /// `{"burrow_pins": 1, "server": …, "set": "sha256:…", "tools": {name: definition}}`.
    package var json: JSON {
        .object(["burrow_pins": .integer(Int64(Self.formatVersion)), "server": .string(server), "set": .string(setDigest), "tools": .object(tools)])
    }

    /// `json`, canonical, with a newline.
    package var encoded: [UInt8] { Array(json.canonicalText.utf8) + [0x0a] }

    /// What a pins file (or the registry's copy) may hold: as much as the
    /// relay lets through in a listing, so what was pinned can be read back.
    package static let limits = JSONLimits(maxDepth: 64, maxKeyBytes: 1 << 16, maxStringBytes: 4 << 20, maxItems: 100_000, maxBytes: 256 << 20)

    package struct Invalid: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// A pins file, read strictly; its `set` must match its tools.
    package static func parse(_ bytes: [UInt8]) throws(Invalid) -> ToolPins {
        let json: JSON
        do {
            json = try JSONParser.parse(bytes, limits: limits)
        } catch {
            throw Invalid(description: "not a pins file: \(error)")
        }
        guard case .object(let top) = json, Set(top.keys) == ["burrow_pins", "server", "set", "tools"] else {
            throw Invalid(description: "a pins file has exactly burrow_pins, server, set and tools")
        }
        guard top["burrow_pins"] == .integer(Int64(formatVersion)) else {
            throw Invalid(description: "burrow_pins: this Burrow reads version \(formatVersion)")
        }
        guard let server = top["server"]?.stringValue, case .object(let tools) = top["tools"] ?? .null else { throw Invalid(description: "server is a string, tools an object") }
        for (name, definition) in tools where definition["name"]?.stringValue != name {
            throw Invalid(description: "tools.\(name): a tool object named \(name)")
        }
        let pins = ToolPins(server: server, tools: tools)
        guard top["set"]?.stringValue == pins.setDigest else { throw Invalid(description: "set does not match the tools (edited by hand?)") }
        return pins
    }
}

/// A session's pins: the approved set (nil until a first listing is
/// approved, when the relay runs with no pins yet), and what to do with a
/// set approved during the session.
package final class PinnedDefinitions: Sendable {
    /// What became of a set approved during the session.
    package enum Kept: Sendable {
        case kept
        /// Another set was approved meanwhile (another session's first
        /// listing): it is the one in force.
        case superseded(ToolPins)
        /// It could not be kept: nothing is approved (every tool withheld).
        case failed
    }

    private let state: Mutex<ToolPins?>
    private let approving: Mutex<Bool>
    private let keep: @Sendable (ToolPins) -> Kept
    private let offer: (@Sendable (ToolPins) -> Void)?
    /// What the server offers now: the pins, with every definition it listed
    /// in their place (what an operator approving it would approve).
    private let offered = Mutex<ToolPins?>(nil)

    /// - Parameters:
    ///   - approved: the pins in force; nil: the first listing of the
    ///     session (until the server says its list changed) is approved
    ///     as it is, and `keep` is told.
    ///   - keep: records a set approved during the session (the CLI writes the pins file).
    ///   - offer: told, when a listing withholds something, of the set the
    ///     server offers (the pins with what it listed in their place):
    ///     what an operator may then approve (burrowd keeps it).
    package init(server: String, approved: ToolPins?, keep: @escaping @Sendable (ToolPins) -> Kept, offer: (@Sendable (ToolPins) -> Void)? = nil) {
        state = Mutex(approved)
        approving = Mutex(approved == nil)
        self.keep = keep
        self.offer = offer
        _ = server
    }

    /// The pins in force, if any.
    package var approved: ToolPins? { state.withLock { $0 } }

    /// Judges one page of a listing (`complete`: its last): the tools the
    /// client may see, and the differences of those withheld. While
    /// approving (the session's first complete listing, and only until the
    /// server says its list changed or the client calls a tool), a tool not
    /// pinned yet is added to the pins; a name pinned already is judged,
    /// never overwritten. `keep` is told of the set once the listing is
    /// complete (under the lock: nothing goes back to a smaller set); if
    /// another set was kept meanwhile, that one is in force from then on.
    func judge(_ tools: [JSON], server: String, complete: Bool) -> (shown: [JSON], withheld: [ToolPins.Difference]) {
        state.withLock { s in
            if approving.withLock({ $0 }) {
                var pins = s ?? ToolPins(server: server, tools: [:])
                for t in tools {
                    if let name = t["name"]?.stringValue, pins.tools[name] == nil { pins.tools[name] = ToolPins.definition(t) }
                }
                s = pins
                if complete {
                    approving.withLock { $0 = false }
                    switch keep(pins) {
                    case .kept: break
                    case .superseded(let other): s = other
                    case .failed: s = ToolPins(server: server, tools: [:])
                    }
                }
            }
            guard let pins = s else { return ([], []) }
            var shown: [JSON] = []
            var withheld: [ToolPins.Difference] = []
            for t in tools {
                if let d = pins.difference(t) { withheld.append(d) } else { shown.append(t) }
            }
            if !withheld.isEmpty, let offer {
                let now = offered.withLock { o -> ToolPins in
                    var set = o ?? pins
                    for t in tools { if let name = t["name"]?.stringValue { set.tools[name] = ToolPins.definition(t) } }
                    o = set
                    return set
                }
                offer(now)
            }
            return (shown, withheld)
        }
    }

    /// The server said its list changed: from now on what it lists is
    /// judged, never approved (once something was approved: a change
    /// announced before the first listing ends nothing).
    func listChanged() {
        state.withLock { s in
            if s != nil { approving.withLock { $0 = false } }
        }
    }

    /// The client calls tools: whatever it was shown is what it approved.
    func endApproval() {
        state.withLock { s in
            if s != nil { approving.withLock { $0 = false } }
        }
    }
}

/// Characters a reader does not see, which can carry instructions to a
/// model: the Unicode tag block (U+E0000–U+E007F), zero-width characters,
/// bidirectional controls and the byte-order mark.
package enum InvisibleCharacters {
    /// Zero-width joiners (U+200C, U+200D) stay: emoji sequences and
    /// scripts such as Persian need them.
    package static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0xE0000...0xE007F, 0xE0100...0xE01EF, 0xFE00...0xFE0F, 0x200B, 0x200E, 0x200F, 0x202A...0x202E, 0x2060...0x2064, 0x2066...0x2069, 0xFEFF, 0x180E,
            0x00AD, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0:
            true
        default: false
        }
    }

    /// Whether any object key in `value` holds one.
    package static func inKeys(_ value: JSON) -> Bool {
        switch value {
        case .array(let items): items.contains(where: inKeys)
        case .object(let members): members.contains { $0.key.unicodeScalars.contains(where: isInvisible) || inKeys($0.value) }
        default: false
        }
    }

    /// `text` without them, and how many there were.
    package static func strip(_ text: String) -> (String, Int) {
        var count = 0
        var out = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if isInvisible(s) { count += 1 } else { out.append(s) }
        }
        return count == 0 ? (text, 0) : (String(out), count)
    }

    /// Every string value in `value` without them, and how many were
    /// removed. Keys are left as they are: two keys stripped to one would
    /// silently lose a value (a schema's property names are its contract).
    package static func strip(_ value: JSON) -> (JSON, Int) {
        switch value {
        case .string(let s):
            let (t, n) = strip(s)
            return (.string(t), n)
        case .array(let items):
            var total = 0
            let out = items.map { item -> JSON in
                let (v, n) = strip(item)
                total += n
                return v
            }
            return (.array(out), total)
        case .object(let members):
            var total = 0
            var out: [String: JSON] = [:]
            for (k, v) in members {
                let (val, n) = strip(v)
                total += n
                out[k] = val
            }
            return (.object(out), total)
        default:
            return (value, 0)
        }
    }
}
