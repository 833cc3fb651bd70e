import BurrowSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The tool's standard streams when its caller is not a terminal (the
/// daemon): stdin is fed from memory, stdout and stderr are kept up to a cap
/// each (the rest is counted, read and dropped, so the tool never blocks on a
/// full pipe), and every chunk can be passed on as it arrives.
///
/// The supervisor's thread does all the reading and writing, in the same
/// poll(2) loop that answers seccomp notifications.
package final class CapturedStreams: Sendable {
    package enum Stream: String, Sendable, Codable { case stdout, stderr }

    /// What one output stream produced.
    package struct Output: Sendable {
        /// The first `cap` bytes.
        package var bytes: [UInt8] = []
        /// Every byte the tool wrote, kept or not.
        package var total: UInt64 = 0
        package var truncated: Bool { total > UInt64(bytes.count) }
    }

    package typealias Sink = @Sendable (Stream, [UInt8]) -> Void

    let input: [UInt8]
    let cap: Int
    let sink: Sink?
    private let outputs = Mutex<(stdout: Output, stderr: Output)>((Output(), Output()))

    /// - Parameters:
    ///   - input: the tool's whole stdin; it sees EOF after it.
    ///   - cap: bytes kept per output stream.
    ///   - sink: called on the supervisor's thread with each chunk read (before the cap applies).
    package init(input: [UInt8] = [], cap: Int, sink: Sink? = nil) {
        self.input = input
        self.cap = cap
        self.sink = sink
    }

    package var stdout: Output { outputs.withLock { $0.stdout } }
    package var stderr: Output { outputs.withLock { $0.stderr } }

    func append(_ chunk: [UInt8], to stream: Stream) {
        outputs.withLock { o in
            func add(_ out: inout Output) {
                out.total += UInt64(chunk.count)
                let room = cap - out.bytes.count
                if room > 0 { out.bytes += chunk.prefix(room) }
            }
            if stream == .stdout { add(&o.stdout) } else { add(&o.stderr) }
        }
        sink?(stream, chunk)
    }
}

/// The supervisor's ends of the three pipes behind `CapturedStreams`.
final class StreamPump {
    /// The tool's ends, handed to the child: stdin's read end, stdout's and stderr's write ends.
    private(set) var childEnds: [FileDescriptor]
    private var stdin: FileDescriptor?
    private var outputs: [(CapturedStreams.Stream, FileDescriptor?)]
    /// Set at once, or when a sandbox built ahead is released (`bind`).
    private var streams: CapturedStreams?
    private var written = 0
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)

    init(_ streams: CapturedStreams?) throws(RunError) {
        do {
            let input = try Kernel.pipe()
            let out = try Kernel.pipe()
            let err = try Kernel.pipe()
            childEnds = [input.0, out.1, err.1]
            stdin = input.1
            outputs = [(.stdout, out.0), (.stderr, err.0)]
            for fd in [input.1, out.0, err.0] { _ = fcntl(fd.rawValue, F_SETFL, fcntl(fd.rawValue, F_GETFL) | O_NONBLOCK) }
        } catch {
            throw .preparation("cannot create the tool's standard streams: \(error)")
        }
        if let streams { bind(streams) }
    }

    /// What the pipes serve: the stdin to feed, where the output goes.
    func bind(_ streams: CapturedStreams) {
        self.streams = streams
        if streams.input.isEmpty { closeInput() }
    }

    deinit {
        closeChildEnds()
        closeInput()
        for case (_, let fd?) in outputs { try? fd.close() }
    }

    /// Once the child holds its copies.
    func closeChildEnds() {
        for fd in childEnds { try? fd.close() }
        childEnds = []
    }

    /// Three poll entries, in this order: stdin (write), stdout, stderr.
    var pollEntries: [pollfd] {
        [pollfd(fd: stdin?.rawValue ?? -1, events: Int16(POLLOUT), revents: 0)]
            + outputs.map { pollfd(fd: $0.1?.rawValue ?? -1, events: Int16(POLLIN), revents: 0) }
    }

    /// Serves the entries `pollEntries` put at `fds[start...]`, and updates them.
    func service(_ fds: inout [pollfd], from start: Int) {
        if fds[start].revents != 0 { feed() }
        for i in 0..<2 where fds[start + 1 + i].revents != 0 { read(i, untilEmpty: false) }
        let entries = pollEntries
        for i in 0..<3 { fds[start + i].fd = entries[i].fd }
    }

    /// Reads whatever is left once the tool's tree is gone.
    func drain() {
        closeInput()
        for i in 0..<2 { read(i, untilEmpty: true) }
    }

    private func feed() {
        guard let fd = stdin, let streams else { return }
        while written < streams.input.count {
            let n = streams.input[written...].withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress, $0.count) }
            if n > 0 {
                written += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            break  // EPIPE: the tool closed its stdin (burrowd ignores SIGPIPE)
        }
        closeInput()
    }

    private func read(_ index: Int, untilEmpty: Bool) {
        guard let fd = outputs[index].1 else { return }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
            if n > 0 {
                streams?.append(Array(buffer[0..<n]), to: outputs[index].0)
                // One buffer per wake-up keeps the loop fair to the other descriptors.
                if !untilEmpty { return }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            break  // EOF (or an error: nothing more will come)
        }
        try? fd.close()
        outputs[index].1 = nil
    }

    private func closeInput() {
        try? stdin?.close()
        stdin = nil
    }
}
