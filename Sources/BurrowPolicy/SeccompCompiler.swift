import BurrowSystem
import CBurrowSystem
import CSeccomp
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Compiles seccomp rules to BPF with libseccomp, in the parent, before any
/// clone: the child only loads the bytes.
enum SeccompCompiler {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    // Action values from <seccomp.h> (function-like macros do not import into Swift).
    static let SCMP_ACT_KILL_PROCESS: UInt32 = 0x8000_0000
    static let SCMP_ACT_NOTIFY: UInt32 = 0x7fc0_0000
    static let SCMP_ACT_ALLOW: UInt32 = 0x7fff_0000
    static func SCMP_ACT_ERRNO(_ e: Int32) -> UInt32 { 0x0005_0000 | (UInt32(bitPattern: e) & 0xffff) }

    static func action(_ a: SeccompAction) -> UInt32 {
        switch a {
        case .allow: SCMP_ACT_ALLOW
        case .errno(let e): SCMP_ACT_ERRNO(e)
        case .notify: SCMP_ACT_NOTIFY
        case .killProcess: SCMP_ACT_KILL_PROCESS
        }
    }

    /// Compiles the rule set for the native architecture only.
    /// - Returns: the BPF program bytes, the libseccomp PFC listing when
    ///   `listing` is set, and the names libseccomp did not know.
    static func compile(
        allowed: [String], rules: [SeccompRule], defaultAction: SeccompAction, badArchAction: SeccompAction,
        listing: Bool = false
    ) throws(Failure) -> (bpf: [UInt8], pfc: String?, unknown: [String]) {
        // Profiles share rule sets: a long-lived process (the daemon) compiles each once.
        // Built from descriptions and raw values only: interpolating a type
        // without a description would go through reflection on every call.
        let key =
            "\(defaultAction.description)|\(badArchAction.description)|\(allowed.joined(separator: ","))|"
            + rules.map { rule in
                rule.syscall + " " + rule.action.description + " "
                    + rule.conditions.map { "\($0.argument) \($0.operation.rawValue) \($0.value) \($0.mask.map { String($0) } ?? "none")" }.joined(separator: " ")
            }
            .joined(separator: ";")
        if !listing, let hit = cache.withLock({ $0[key] }) { return (hit.bpf, nil, hit.unknown) }
        if listing { return try compileUncached(allowed: allowed, rules: rules, defaultAction: defaultAction, badArchAction: badArchAction, listing: true) }
        let compiled = try compile(allowed: allowed, rules: rules, defaultAction: defaultAction, badArchAction: badArchAction, key: key, runCache: RunCache.forThisBinary)
        cache.withLock { $0[key] = compiled }
        return (compiled.bpf, nil, compiled.unknown)
    }

    private static let cache = Mutex<[String: (bpf: [UInt8], unknown: [String])]>([:])

    /// Compiles through the run cache, so `burrow` processes share programs
    /// too: an entry is keyed by the rule set, libseccomp (its version, file
    /// and API level) and this binary.
    static func compile(
        allowed: [String], rules: [SeccompRule], defaultAction: SeccompAction, badArchAction: SeccompAction, key: String, runCache: RunCache?
    ) throws(Failure) -> (bpf: [UInt8], unknown: [String]) {
        let diskKey = "seccomp|\(libseccompIdentity)|\(RunCache.binaryIdentity ?? "")|" + key
        // Named by the rule set alone: a new binary or libseccomp replaces its entry.
        let name = RunCache.name("seccomp", for: key)
        if let entry = runCache?.read(name, key: diskKey), let hit = decodeEntry(entry) { return hit }
        let compiled = try compileUncached(allowed: allowed, rules: rules, defaultAction: defaultAction, badArchAction: badArchAction, listing: false)
        runCache?.write(name, key: diskKey, value: encodeEntry(bpf: compiled.bpf, unknown: compiled.unknown))
        return (compiled.bpf, compiled.unknown)
    }

    /// The libseccomp library (its version, and the file it was loaded
    /// from: a rebuilt package of the same version is another file) and the
    /// kernel API level the program is compiled with.
    private static let libseccompIdentity: String = {
        let v = seccomp_version()?.pointee
        var file = "?"
        var st = stat()
        if let name = brw_symbol_file(unsafeBitCast(seccomp_init as @convention(c) (UInt32) -> scmp_filter_ctx?, to: UnsafeRawPointer.self)), stat(name, &st) == 0 {
            file = "\(String(cString: name)) \(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        }
        return "libseccomp \(v?.major ?? 0).\(v?.minor ?? 0).\(v?.micro ?? 0) \(file) api \(seccomp_api_get())"
    }()

    /// The names libseccomp did not know, one line, then the program.
    static func encodeEntry(bpf: [UInt8], unknown: [String]) -> [UInt8] {
        Array(unknown.joined(separator: ",").utf8) + [UInt8(ascii: "\n")] + bpf
    }

    /// nil unless the program is a whole number of instructions (at least
    /// one, at most BPF_MAXINSNS) and the names are plain system call names.
    static func decodeEntry(_ entry: [UInt8]) -> (bpf: [UInt8], unknown: [String])? {
        guard let newline = entry.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let names = entry[..<newline]
        let bpf = Array(entry[(newline + 1)...])
        guard !bpf.isEmpty, bpf.count % 8 == 0, bpf.count / 8 <= 4096,
            names.allSatisfy({ $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { return nil }
        let unknown = names.isEmpty ? [] : names.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard !unknown.contains(where: \.isEmpty) else { return nil }
        return (bpf, unknown)
    }

    private static func compileUncached(
        allowed: [String], rules: [SeccompRule], defaultAction: SeccompAction, badArchAction: SeccompAction,
        listing: Bool
    ) throws(Failure) -> (bpf: [UInt8], pfc: String?, unknown: [String]) {
        guard let ctx = seccomp_init(action(defaultAction)) else { throw Failure(description: "seccomp_init failed") }
        defer { seccomp_release(ctx) }
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, action(badArchAction)), "set the bad-architecture action")
        // Burrow sets no_new_privs itself, in the child; the exported program does not depend on it.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "clear CTL_NNP")
        // A binary tree of syscall numbers: O(log n) per call instead of a linear scan.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2), "select the binary-tree optimisation")
        // A failed system call (the export's write) reports its own errno, not ECANCELED for all.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1), "report system errors as they are")

        var unknown: [String] = []
        func number(_ name: String) -> Int32? {
            let nr = seccomp_syscall_resolve_name(name)
            if nr == __NR_SCMP_ERROR {
                if !unknown.contains(name) { unknown.append(name) }
                return nil
            }
            return nr
        }
        for name in allowed {
            guard let nr = number(name) else { continue }
            try check(seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 0, nil), "allow \(name)")
        }
        let defaultValue = action(defaultAction)
        for rule in rules {
            guard let nr = number(rule.syscall) else { continue }
            // A rule that does what the default does is the supervisor's
            // business (which errno to answer), not the filter's; libseccomp
            // refuses it (EACCES).
            if action(rule.action) == defaultValue { continue }
            var cmps = rule.conditions.map { c -> scmp_arg_cmp in
                switch c.operation {
                case .equal: scmp_arg_cmp(arg: UInt32(c.argument), op: SCMP_CMP_EQ, datum_a: c.value, datum_b: 0)
                case .notEqual: scmp_arg_cmp(arg: UInt32(c.argument), op: SCMP_CMP_NE, datum_a: c.value, datum_b: 0)
                case .maskedEqual:
                    scmp_arg_cmp(arg: UInt32(c.argument), op: SCMP_CMP_MASKED_EQ, datum_a: c.mask ?? ~0, datum_b: c.value)
                }
            }
            let rc = cmps.withUnsafeMutableBufferPointer { buffer in
                seccomp_rule_add_array(ctx, action(rule.action), nr, UInt32(buffer.count), buffer.baseAddress)
            }
            try check(rc, "add the rule for \(rule.syscall)")
        }
        let bpf = try drain(ctx, seccomp_export_bpf)
        let pfc = listing ? String(decoding: try drain(ctx, seccomp_export_pfc), as: UTF8.self) : nil
        return (bpf, pfc, unknown)
    }

    /// Runs an export function into an anonymous memory file and reads it back.
    private static func drain(_ ctx: scmp_filter_ctx, _ exporter: (scmp_filter_ctx?, Int32) -> Int32) throws(Failure) -> [UInt8] {
        let fd = FileIO.anonymousMemoryFile("burrow-seccomp")
        guard fd >= 0 else { throw Failure(description: "memfd_create failed: errno \(-fd)") }
        defer { close(fd) }
        try check(exporter(ctx, fd), "export the filter")
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0, lseek(fd, 0, SEEK_SET) == 0 else { throw Failure(description: "lseek on the export failed") }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer in
                buffer.baseAddress.map { read(fd, $0 + done, buffer.count - done) } ?? -1
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "reading the exported filter failed") }
            done += n
        }
        return bytes
    }

    private static func check(_ rc: Int32, _ what: String) throws(Failure) {
        if rc < 0 {
            throw Failure(description: "libseccomp could not \(what): \(String(cString: strerror(-rc)))")
        }
    }
}
