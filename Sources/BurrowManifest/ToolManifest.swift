import BurrowAudit
import BurrowJSON

/// What a tool is, as a signer vouches for it: every file it executes or
/// loads that is not part of the host's base system, by SHA-256; the
/// directory trees (`roots`, such as a Python virtualenv) it covers whole,
/// so a file added to one (a `.pth` runs code at start) is as wrong as a
/// file changed; the profile it runs under (its digest), the command, the
/// tool's id and version, the trust level the signer claims for it, and
/// how long the signature holds. Signed as the exact bytes of its JSON
/// (`ManifestSignature`); read strictly (`parse`).
package struct ToolManifest: Codable, Sendable, Equatable {
    package static let formatVersion = 1

    package struct Tool: Codable, Sendable, Equatable {
        package var id: String
        package var version: String

        package init(id: String, version: String) {
            self.id = id
            self.version = version
        }
    }

    package struct File: Codable, Sendable, Equatable {
        package var path: String
        /// Lowercase hex.
        package var sha256: String
        package var size: Int64
        /// The permission bits (e.g. 0o755).
        package var mode: UInt32

        package init(path: String, sha256: String, size: Int64, mode: UInt32) {
            self.path = path
            self.sha256 = sha256
            self.size = size
            self.mode = mode
        }
    }

    package struct Link: Codable, Sendable, Equatable {
        package var path: String
        package var target: String

        package init(path: String, target: String) {
            self.path = path
            self.target = target
        }
    }

    package var format: Int
    package var tool: Tool
    /// system, verified, community or untrusted.
    package var trustLevel: String
    /// `sha256:` of the profile file's bytes.
    package var profile: String
    package var command: [String]
    /// RFC 3339 (UTC).
    package var issued: String
    package var expires: String
    package var roots: [String]
    package var files: [File]
    package var links: [Link]

    enum CodingKeys: String, CodingKey {
        case format = "burrow_manifest"
        case tool
        case trustLevel = "trust_level"
        case profile, command, issued, expires, roots, files, links
    }

    package init(
        tool: Tool, trustLevel: String, profile: String, command: [String], issued: String, expires: String, roots: [String], files: [File], links: [Link]
    ) {
        format = Self.formatVersion
        self.tool = tool
        self.trustLevel = trustLevel
        self.profile = profile
        self.command = command
        self.issued = issued
        self.expires = expires
        self.roots = roots
        self.files = files
        self.links = links
    }

    /// Why a manifest is not one.
    package struct Invalid: Error, Sendable, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }

    /// At most this many files and links: a manifest is read whole, by root.
    package static let maxEntries = 200_000
    /// At most this many roots (each is walked, up to `maxEntries`), and
    /// files of at most this size: verifying a manifest, signed or not,
    /// reads a bounded amount.
    package static let maxRoots = 64
    package static let maxFileBytes: Int64 = 16 << 30

    /// A manifest's bytes, read strictly: unknown fields, duplicate keys,
    /// a path that is not absolute and normalised (as bytes), a digest that
    /// is not 64 hex digits, a path listed twice, an expiry before the
    /// issue: each refused.
    package static func parse(_ bytes: [UInt8]) throws(Invalid) -> ToolManifest {
        let manifest: ToolManifest
        do {
            manifest = try StrictJSONDecoder(limits: JSONLimits(maxStringBytes: 1 << 16, maxItems: maxEntries, maxBytes: 256 << 20)).decode(ToolManifest.self, from: bytes)
        } catch {
            throw Invalid("not a manifest: \(error)")
        }
        try manifest.check()
        return manifest
    }

    func check() throws(Invalid) {
        guard format == Self.formatVersion else { throw Invalid("burrow_manifest \(format): this Burrow reads version \(Self.formatVersion)") }
        guard ["system", "verified", "community", "untrusted"].contains(trustLevel) else {
            throw Invalid("trust_level: system, verified, community or untrusted, not '\(trustLevel)'")
        }
        guard profile.hasPrefix("sha256:"), Self.isDigest(String(profile.dropFirst(7))) else { throw Invalid("profile: sha256: and 64 lowercase hex digits") }
        guard !command.isEmpty, !command[0].isEmpty else { throw Invalid("command: the executable and its arguments") }
        guard let issuedAt = AuditClock.parse(issued), let expiresAt = AuditClock.parse(expires) else {
            throw Invalid("issued, expires: RFC 3339 times such as 2026-12-07T10:00:00Z")
        }
        guard expiresAt > issuedAt else { throw Invalid("expires is not after issued") }
        guard files.count + links.count <= Self.maxEntries else { throw Invalid("more than \(Self.maxEntries) files and links") }
        guard roots.count <= Self.maxRoots else { throw Invalid("more than \(Self.maxRoots) roots") }
        for root in roots where !Self.isPath(root) || root == "/" { throw Invalid("roots: '\(root)' is not an absolute, normalised directory path (and not /)") }
        var seen = Set<[UInt8]>()
        for path in files.map(\.path) + links.map(\.path) {
            guard Self.isPath(path) else { throw Invalid("'\(path)' is not an absolute, normalised path") }
            guard seen.insert(Array(path.utf8)).inserted else { throw Invalid("'\(path)' is listed twice") }
        }
        // Nothing beneath a link: a path through a listed link would be
        // another path on the host, and a verified copy would be built
        // through the link.
        let linkPaths = Set(links.map { Array($0.path.utf8) })
        for path in files.map(\.path) + links.map(\.path) + roots {
            var bytes = Array(path.utf8)
            while let slash = bytes.lastIndex(of: 0x2f), slash > 0 {
                bytes.removeSubrange(slash...)
                if linkPaths.contains(bytes) { throw Invalid("'\(path)' lies beneath the link \(String(decoding: bytes, as: UTF8.self)), which the manifest also lists") }
            }
        }
        for file in files {
            guard Self.isDigest(file.sha256) else { throw Invalid("\(file.path): sha256 is 64 lowercase hex digits") }
            guard (0...Self.maxFileBytes).contains(file.size), file.mode <= 0o7777 else {
                throw Invalid("\(file.path): a size from 0 to \(Self.maxFileBytes) bytes, and permission bits")
            }
        }
    }

    /// The root that covers `path`, if any.
    package func root(of path: String) -> String? {
        roots.first { path.hasPrefix($0 + "/") }
    }

    static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Absolute, no empty, `.` or `..` component, no trailing slash, no NUL or line break.
    /// Judged as bytes, as the kernel splits it (a combining mark after a
    /// `/` makes one Swift Character of both).
    static func isPath(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        guard bytes.first == 0x2f, bytes.count <= 4096, !bytes.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) else { return false }
        if bytes == [0x2f] { return true }
        return bytes.dropFirst().split(separator: 0x2f, omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && !$0.elementsEqual([0x2e]) && !$0.elementsEqual([0x2e, 0x2e]) }
    }
}
