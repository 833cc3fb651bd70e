import CCap

/// Capability names from libcap, in kernel numbering.
enum CapabilityNames {
    /// `CAP_CHOWN` ... for 0...lastCap, as libcap names them.
    static func all(lastCap: Int) -> [String] {
        (0...max(0, lastCap)).map { number in
            guard let name = cap_to_name(cap_value_t(number)) else { return "CAP_\(number)" }
            defer { cap_free(name) }
            return String(cString: name).uppercased()
        }
    }

    /// The kernel number of a capability name, or nil when libcap does not know it.
    static func number(_ name: String) -> Int? {
        var value: cap_value_t = 0
        return cap_from_name(name.lowercased(), &value) == 0 ? Int(value) : nil
    }
}
