import BurrowSystem

/// What the loader needs to start an executable: its ELF interpreter and the
/// shared libraries it names (DT_NEEDED), or a script's `#!` interpreter.
struct ELFInfo: Equatable {
    var interpreter: String?
    var needed: [String]
    var runpath: [String]

    /// Reads the program and dynamic headers of a 64-bit little-endian ELF file.
    /// Returns nil for anything else (scripts are handled by the caller).
    static func read(_ path: String, from fs: any FileSystemView) -> ELFInfo? {
        guard let header = fs.read(path, offset: 0, count: 64), header.count == 64,
            header[0...3] == [0x7f, 0x45, 0x4c, 0x46], header[4] == 2, header[5] == 1
        else { return nil }
        let phoff = Int(le64(header, 32))
        let phentsize = Int(le16(header, 54))
        let phnum = Int(le16(header, 56))
        guard phentsize >= 56, phnum > 0, phnum < 256,
            let table = fs.read(path, offset: phoff, count: phentsize * phnum), table.count == phentsize * phnum
        else { return nil }

        var interpreter: String?
        var loads: [(vaddr: UInt64, offset: UInt64, size: UInt64)] = []
        var dynamic: (offset: Int, size: Int)?
        for i in 0..<phnum {
            let base = i * phentsize
            let type = le32(table, base)
            let offset = le64(table, base + 8)
            let vaddr = le64(table, base + 16)
            let filesz = le64(table, base + 32)
            switch type {
            case 3:  // PT_INTERP
                if filesz < 4096, let bytes = fs.read(path, offset: Int(offset), count: Int(filesz)) {
                    interpreter = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
            case 1: loads.append((vaddr, offset, filesz))  // PT_LOAD
            case 2: dynamic = (Int(offset), Int(filesz))  // PT_DYNAMIC
            default: break
            }
        }
        guard let dynamic, dynamic.size < 1 << 20, let dyn = fs.read(path, offset: dynamic.offset, count: dynamic.size)
        else { return ELFInfo(interpreter: interpreter, needed: [], runpath: []) }

        var neededOffsets: [UInt64] = []
        var runpathOffsets: [UInt64] = []
        var strtab: UInt64?
        var strsz: UInt64 = 0
        var at = 0
        while at + 16 <= dyn.count {
            let tag = le64(dyn, at)
            let value = le64(dyn, at + 8)
            switch tag {
            case 0: at = dyn.count  // DT_NULL
            case 1: neededOffsets.append(value)  // DT_NEEDED
            case 5: strtab = value  // DT_STRTAB
            case 10: strsz = value  // DT_STRSZ
            case 15, 29: runpathOffsets.append(value)  // DT_RPATH, DT_RUNPATH
            default: break
            }
            at += 16
        }
        guard let strtab, strsz < 1 << 20,
            let load = loads.first(where: { strtab >= $0.vaddr && strtab < $0.vaddr + $0.size }),
            let strings = fs.read(path, offset: Int(strtab - load.vaddr + load.offset), count: Int(strsz))
        else { return ELFInfo(interpreter: interpreter, needed: [], runpath: []) }
        func string(at offset: UInt64) -> String? {
            guard offset < strings.count else { return nil }
            return String(decoding: strings[Int(offset)...].prefix { $0 != 0 }, as: UTF8.self)
        }
        return ELFInfo(
            interpreter: interpreter, needed: neededOffsets.compactMap(string),
            runpath: runpathOffsets.compactMap(string).flatMap { $0.split(separator: ":").map(String.init) })
    }

    /// The `#!` line of a script: interpreter and optional argument.
    static func shebang(_ path: String, from fs: any FileSystemView) -> (String, String?)? {
        guard let head = fs.read(path, offset: 0, count: 256), head.starts(with: [0x23, 0x21]) else { return nil }
        let line = String(decoding: head.dropFirst(2).prefix { $0 != 0x0a }, as: UTF8.self)
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let interpreter = words.first else { return nil }
        return (interpreter, words.count > 1 ? words[1] : nil)
    }
}

private func le16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
private func le32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
private func le64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
