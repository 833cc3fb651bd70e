package import BurrowJSON

/// The bounds every profile and host policy document is read within, TOML
/// and JSON alike, checked before any parser recurses or allocates: a
/// profile comes from callers of the API too.
package enum DocumentLimits {
    /// The whole document.
    package static let maxBytes = 1 << 20
    /// Tables, arrays and dotted key segments inside one another (shipped
    /// profiles use 4).
    package static let maxDepth = 32
    /// One key (or one segment of a dotted key).
    package static let maxKeyBytes = 256
    /// One string value.
    package static let maxStringBytes = 64 << 10
    /// Elements of one array (the profile reader allows fewer grants per list:
    /// `SecurityProfile.maxEntries`).
    package static let maxItems = 65_536

    /// Entries of one profile list (file_read, execute, network, ...):
    /// validation is O(n log n) in them, the plan's mount table linear.
    package static let maxListEntries = 4096
    /// Entries of env_whitelist and permissions.environment (patterns are
    /// checked pairwise for overlaps).
    package static let maxEnvironmentEntries = 256

    /// The same bounds for the JSON parser.
    package static let json = JSONLimits(maxDepth: maxDepth, maxKeyBytes: maxKeyBytes, maxStringBytes: maxStringBytes, maxItems: maxItems, maxBytes: maxBytes)
}
