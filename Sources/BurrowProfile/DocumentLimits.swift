public import BurrowJSON

/// The bounds every profile and host policy document is read within, TOML
/// and JSON alike, checked before any parser recurses or allocates: a
/// profile comes from callers of the API too.
public enum DocumentLimits {
    /// The whole document.
    public static let maxBytes = 1 << 20
    /// Tables, arrays and dotted key segments inside one another (shipped
    /// profiles use 4).
    public static let maxDepth = 32
    /// One key (or one segment of a dotted key).
    public static let maxKeyBytes = 256
    /// One string value.
    public static let maxStringBytes = 64 << 10
    /// Elements of one array (the profile reader allows fewer grants per list:
    /// `SecurityProfile.maxEntries`).
    public static let maxItems = 65_536

    /// Entries of one profile list (file_read, execute, network, ...):
    /// validation is O(n log n) in them, the plan's mount table linear.
    public static let maxListEntries = 4096
    /// Entries of env_whitelist and permissions.environment (patterns are
    /// checked pairwise for overlaps).
    public static let maxEnvironmentEntries = 256

    /// The same bounds for the JSON parser.
    public static let json = JSONLimits(maxDepth: maxDepth, maxKeyBytes: maxKeyBytes, maxStringBytes: maxStringBytes, maxItems: maxItems, maxBytes: maxBytes)
}
