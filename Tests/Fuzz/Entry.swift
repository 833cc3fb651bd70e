#if canImport(Glibc)
    import Glibc
#endif

/// Writes to stderr (stdio's `stderr` is a global Swift 6 will not share).
func complain(_ text: String) {
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

#if BURROW_FUZZING
    /// libFuzzer's entry: the target is named by BURROW_FUZZ_TARGET.
    nonisolated(unsafe) private var selected: (@Sendable ([UInt8]) -> Void)?

    @_cdecl("LLVMFuzzerTestOneInput")
    package func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        if selected == nil {
            let name = getenv("BURROW_FUZZ_TARGET").map { String(cString: $0) } ?? ""
            guard let target = FuzzTargets.all[name] else {
                complain("BURROW_FUZZ_TARGET must name one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n")
                exit(2)
            }
            selected = target
        }
        selected?(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func runDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    /// SwiftPM names an executable's entry point itself, so libFuzzer's own
    /// `main` is not used: this one hands over to its driver.
    @main
    struct FuzzMain {
        static func main() {
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(runDriver(&argc, &argv, fuzzOne))
        }
    }
#else
    /// Replays inputs through a target: `burrow-fuzz replay TARGET FILE|DIR...`.
    @main
    struct Replay {
        static func main() {
            let args = Array(CommandLine.arguments.dropFirst())
            guard args.count >= 2, args[0] == "replay", let target = FuzzTargets.all[args[1]] else {
                complain("usage: burrow-fuzz replay TARGET FILE|DIR...\ntargets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n")
                exit(2)
            }
            var count = 0
            for path in args.dropFirst(2) {
                for file in files(path) {
                    guard let bytes = read(file) else {
                        complain("burrow-fuzz: cannot read \(file)\n")
                        exit(1)
                    }
                    target(bytes)
                    count += 1
                }
            }
            print("\(args[1]): \(count) inputs replayed")
        }

        static func files(_ path: String) -> [String] {
            guard let dir = opendir(path) else { return [path] }
            defer { closedir(dir) }
            var out: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if !name.hasPrefix(".") { out.append(path + "/" + name) }
            }
            return out.sorted()
        }

        static func read(_ file: String) -> [UInt8]? {
            guard let f = fopen(file, "rb") else { return nil }
            defer { fclose(f) }
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, f)
                if n <= 0 { break }
                out += chunk[0..<n]
            }
            return out
        }
    }
#endif
