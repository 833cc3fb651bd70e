import BurrowJSON
import BurrowSession
import BurrowSystem
import Foundation
import SystemPackage
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The session socket's framing and its descriptor passing, without burrowd.
@Suite("Session protocol")
struct SessionProtocolTests {
    func frame(_ kind: Session.Kind, _ text: String) -> [UInt8] { Session.Frame(kind: kind, payload: Array(text.utf8)).bytes }

    @Test func framesReassembleFromAnySplit() throws {
        let stream = frame(.request, #"{"a":1}"#) + frame(.signal, #"{"number":15}"#) + frame(.finished, "")
        for cut in 0...stream.count {
            var decoder = Session.FrameDecoder(acceptingDescriptorsWith: [.request])
            var got: [(Session.Kind, String)] = []
            for part in [Array(stream[..<cut]), Array(stream[cut...])] {
                decoder.feed(part)
                while let f = try decoder.next() { got.append((f.kind, String(decoding: f.payload, as: UTF8.self))) }
            }
            #expect(got.map(\.0) == [.request, .signal, .finished] && got.map(\.1) == [#"{"a":1}"#, #"{"number":15}"#, ""], "cut at \(cut)")
            #expect(!decoder.isMidFrame)
        }
    }

    @Test func oversizedUnknownAndTruncatedFramesAreErrors() throws {
        var big = Session.FrameDecoder()
        big.feed([0xFF, 0xFF, 0xFF, 0xFF, 1])
        #expect(throws: Session.ReadError.tooLarge(0xFFFF_FFFF)) { try big.next() }
        var unknown = Session.FrameDecoder()
        unknown.feed([0, 0, 0, 0, 99])
        #expect(throws: Session.ReadError.unknownKind(99)) { try unknown.next() }
        // A stream that ends inside a frame: the reader says so.
        let (a, b) = try socketPair()
        defer { a.close() }
        try b.send(Array(frame(.request, "{}").dropLast()))
        b.close()
        var reader = Session.Reader(a)
        #expect(throws: Session.ReadError.truncated) { try reader.next() }
    }

    @Test func descriptorsTravelWithTheRequestOnlyAndAreClosedOtherwise() throws {
        let (a, b) = try socketPair()
        defer {
            a.close()
            b.close()
        }
        let (readEnd, writeEnd) = try Kernel.pipe()
        defer { try? readEnd.close() }
        // The request carries the pipe's write end; what is written through the received copy arrives.
        try b.send(frame(.request, "{}"), descriptors: [writeEnd.rawValue])
        try writeEnd.close()
        var reader = Session.Reader(a, acceptingDescriptorsWith: [.request])
        let request = try #require(try reader.next())
        #expect(request.kind == .request && request.descriptors.count == 1)
        _ = try request.descriptors[0].writeAll(Array("through".utf8))
        request.closeDescriptors()
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = read(readEnd.rawValue, &buffer, buffer.count)
        #expect(String(decoding: buffer.prefix(max(0, n)), as: UTF8.self) == "through")
        // A signal frame with a descriptor: refused, and the descriptor closed (its pipe sees the end).
        let (r2, w2) = try Kernel.pipe()
        defer { try? r2.close() }
        try b.send(frame(.signal, #"{"number":2}"#), descriptors: [w2.rawValue])
        try w2.close()
        #expect(throws: Session.ReadError.unexpectedDescriptors) { try reader.next() }
        #expect(read(r2.rawValue, &buffer, 1) == 0, "no copy of the write end is left open")
        // More than eight: the kernel's message is refused whole.
        let (r3, w3) = try Kernel.pipe()
        defer {
            try? r3.close()
            try? w3.close()
        }
        let (c, d) = try socketPair()
        defer {
            c.close()
            d.close()
        }
        #expect(throws: Errno.invalidArgument) { try d.send(frame(.request, "{}"), descriptors: Array(repeating: w3.rawValue, count: 9)) }
    }

    @Test func descriptorsOnABadHeaderOrMidFrameAreClosedAndRefused() throws {
        // A bad header with a descriptor: refused, the descriptor closed.
        let (r1, w1) = try Kernel.pipe()
        defer { try? r1.close() }
        var decoder = Session.FrameDecoder(acceptingDescriptorsWith: [.request])
        decoder.feed([0xFF, 0xFF, 0xFF, 0xFF, 1], descriptors: [w1])
        #expect(throws: Session.ReadError.tooLarge(0xFFFF_FFFF)) { try decoder.next() }
        var byte: UInt8 = 0
        #expect(read(r1.rawValue, &byte, 1) == 0, "the write end was closed")
        // Descriptors that come in the middle of a frame (not with its first bytes): refused, closed.
        let (r2, w2) = try Kernel.pipe()
        defer { try? r2.close() }
        let request = frame(.request, #"{"a":1}"#)
        var split = Session.FrameDecoder(acceptingDescriptorsWith: [.request])
        split.feed(Array(request.prefix(3)))
        split.feed(Array(request.dropFirst(3)), descriptors: [w2])
        #expect(throws: Session.ReadError.unexpectedDescriptors) { try split.next() }
        #expect(read(r2.rawValue, &byte, 1) == 0, "the write end was closed")
        // A second batch before the first was handed out, or more than eight: refused.
        let (r3, w3) = try Kernel.pipe()
        defer {
            try? r3.close()
            try? w3.close()
        }
        var twice = Session.FrameDecoder(acceptingDescriptorsWith: [.request])
        twice.feed([], descriptors: [try dup(w3)])
        twice.feed(request, descriptors: [try dup(w3)])
        #expect(throws: Session.ReadError.unexpectedDescriptors) { try twice.next() }
    }

    private func dup(_ fd: FileDescriptor) throws -> FileDescriptor { try fd.duplicate() }

    @Test func thePeerIsTheKernelsRecord() throws {
        let (a, b) = try socketPair()
        defer {
            a.close()
            b.close()
        }
        let peer = try a.peer()
        #expect(peer.pid == getpid() && peer.uid == getuid() && peer.gid == getgid())
        var groups = [gid_t](repeating: 0, count: 256)
        let n = getgroups(Int32(groups.count), &groups)
        #expect(Set(peer.groups) == Set(groups.prefix(Int(max(0, n)))))
    }

    @Test func requestsDecodeStrictly() throws {
        let decoder = StrictJSONDecoder(limits: Session.requestLimits)
        let minimal = #"{"command":"run","profile":{"name":"minimal"},"argv":["/bin/true"],"workingDirectory":"/"}"#
        let request = try decoder.decode(Session.Request.self, from: Array(minimal.utf8))
        #expect(request.parameters.isEmpty && request.environment.isEmpty && request.withoutMcpRelay == nil)
        for bad in [
            #"{"command":"run","profile":{"name":"minimal"},"argv":[],"workingDirectory":"/","extra":1}"#,
            #"{"command":"exec","profile":{"name":"minimal"},"argv":[],"workingDirectory":"/"}"#,
            #"{"command":"run","command":"mcp","profile":{"name":"minimal"},"argv":[],"workingDirectory":"/"}"#,
        ] {
            #expect(throws: JSONDecodeError.self, "\(bad)") { try decoder.decode(Session.Request.self, from: Array(bad.utf8)) }
        }
        // What the client sends reads back as sent.
        var full = Session.Request(command: .mcp, profile: .init(document: "x = 1", format: "toml", file: "/home/a/p.toml"), argv: ["srv"], workingDirectory: "/home/a")
        full.parameters = ["repo": "/home/a/r"]
        full.environment = ["LANG": "C"]
        let encoded = try Session.Frame(.request, full)
        #expect(try decoder.decode(Session.Request.self, from: encoded.payload) == full)
    }

    private func socketPair() throws -> (UnixSocket, UnixSocket) {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
        return (UnixSocket(FileDescriptor(rawValue: fds[0])), UnixSocket(FileDescriptor(rawValue: fds[1])))
    }
}
