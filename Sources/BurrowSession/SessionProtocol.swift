package import BurrowJSON
package import BurrowPolicy
package import BurrowProfile
package import BurrowRuntime
package import BurrowSystem
import FoundationEssentials
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// The session socket's protocol: how an unprivileged `burrow run`, `burrow
/// mcp` or `burrow dry-run` asks burrowd to do what root's would do in
/// process. Frames on a Unix stream socket, each a 4-byte big-endian
/// payload length, a kind byte and a JSON payload. The client's first frame
/// is its request, carrying its stdin, stdout and stderr (SCM_RIGHTS) for
/// run and mcp; then it may send signals. burrowd answers with violations
/// as they happen and one final frame (refused, failed, plan or finished),
/// then closes. Either side closing ends the session: a client that goes
/// away stops its sandbox. docs/daemon-api.md ("The session socket").
package enum Session {
    /// Frame kinds. Client to burrowd: `request`, `signal`; burrowd to client: the rest.
    package enum Kind: UInt8, Sendable {
        case request = 1
        case signal = 2
        case violation = 16
        case refused = 17
        case failed = 18
        case plan = 19
        case finished = 20
    }

    /// The largest payload either side accepts: a request holds a profile
    /// document (at most `DocumentLimits.maxBytes`) and the caller's
    /// environment; a plan or a run record is far smaller.
    package static let maxPayload = 4 << 20

    /// Limits of a request's JSON (burrowd reads it from an unprivileged caller).
    package static let requestLimits = JSONLimits(
        maxDepth: 8, maxKeyBytes: 4096, maxStringBytes: DocumentLimits.maxBytes, maxItems: 65_536, maxBytes: maxPayload)

    /// One frame: its kind, its payload and the descriptors that came with it.
    package struct Frame: Sendable {
        package var kind: Kind
        package var payload: [UInt8]
        package var descriptors: [FileDescriptor] = []

        package init(kind: Kind, payload: [UInt8], descriptors: [FileDescriptor] = []) {
            self.kind = kind
            self.payload = payload
            self.descriptors = descriptors
        }

        /// A frame of `value` encoded as JSON.
        package init(_ kind: Kind, _ value: some Encodable) throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            self.init(kind: kind, payload: Array(try encoder.encode(value)))
        }

        /// The header and payload as sent.
        package var bytes: [UInt8] {
            let n = UInt32(payload.count)
            return [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n), kind.rawValue] + payload
        }

        /// Closes the descriptors no one took.
        package func closeDescriptors() { for fd in descriptors { try? fd.close() } }
    }

    /// Why a frame could not be read.
    package enum ReadError: Error, Sendable, CustomStringConvertible, Equatable {
        /// The stream ended inside a frame.
        case truncated
        case tooLarge(Int)
        case unknownKind(UInt8)
        /// Descriptors came with a frame that may not carry them, or too many.
        case unexpectedDescriptors
        case system(Errno)

        package var description: String {
            switch self {
            case .truncated: "the connection ended inside a frame"
            case .tooLarge(let n): "a frame of \(n) bytes is above the \(Session.maxPayload)-byte limit"
            case .unknownKind(let k): "unknown frame kind \(k)"
            case .unexpectedDescriptors: "descriptors came with a frame that may not carry them (or more than \(UnixSocket.maxDescriptors))"
            case .system(let e): e == .resourceTemporarilyUnavailable ? "timed out waiting for a frame" : "\(e)"
            }
        }
    }

    /// Splits a byte stream into frames. Descriptors must come with the
    /// first bytes of a frame whose kind may carry them (`accepting`), at
    /// most `UnixSocket.maxDescriptors` of them; any others are closed and
    /// the stream is refused (`unexpectedDescriptors`). Every error closes
    /// the descriptors not yet handed out.
    package struct FrameDecoder: Sendable {
        private var buffer: [UInt8] = []
        private var start = 0
        private var pending: [FileDescriptor] = []
        /// Descriptors came where none may: mid-frame, or too many.
        private var misplaced = false
        package var accepting: Set<Kind>

        package init(acceptingDescriptorsWith kinds: Set<Kind> = []) { accepting = kinds }

        /// Adds bytes and the descriptors that came with them.
        package mutating func feed(_ bytes: [UInt8], descriptors: [FileDescriptor] = []) {
            if !descriptors.isEmpty && (isMidFrame || !pending.isEmpty || descriptors.count > UnixSocket.maxDescriptors) {
                for fd in descriptors { try? fd.close() }
                misplaced = true
            } else {
                pending += descriptors
            }
            if start > 0 && start == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            buffer += bytes
        }

        /// The next whole frame, or nil when more bytes are needed.
        package mutating func next() throws(ReadError) -> Frame? {
            do {
                return try frame()
            } catch {
                close()
                throw error
            }
        }

        private mutating func frame() throws(ReadError) -> Frame? {
            if misplaced { throw .unexpectedDescriptors }
            let available = buffer.count - start
            guard available >= 5 else { return nil }
            let n = buffer[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
            guard n <= Session.maxPayload else { throw .tooLarge(n) }
            guard let kind = Kind(rawValue: buffer[start + 4]) else { throw .unknownKind(buffer[start + 4]) }
            if !pending.isEmpty && !accepting.contains(kind) { throw .unexpectedDescriptors }
            guard available >= 5 + n else { return nil }
            let payload = Array(buffer[start + 5..<start + 5 + n])
            start += 5 + n
            if start > 1 << 16 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let descriptors = pending
            pending = []
            return Frame(kind: kind, payload: payload, descriptors: descriptors)
        }

        /// Closes descriptors received but not yet handed out.
        package mutating func close() {
            for fd in pending { try? fd.close() }
            pending = []
        }

        /// Whether bytes of an unfinished frame are waiting.
        package var isMidFrame: Bool { buffer.count > start }
    }

    /// Reads frames from a socket (blocking).
    package struct Reader: Sendable {
        package let socket: UnixSocket
        private var decoder: FrameDecoder

        package init(_ socket: UnixSocket, acceptingDescriptorsWith kinds: Set<Kind> = []) {
            self.socket = socket
            decoder = FrameDecoder(acceptingDescriptorsWith: kinds)
        }

        /// Which kinds may carry descriptors from now on.
        package mutating func accept(descriptorsWith kinds: Set<Kind>) { decoder.accepting = kinds }

        /// The next frame; nil at a clean end of stream. With a deadline
        /// (CLOCK_MONOTONIC nanoseconds), the whole frame must have arrived
        /// by then, however slowly its bytes come (else EAGAIN: timed out).
        package mutating func next(deadline: UInt64? = nil) throws(ReadError) -> Frame? {
            while true {
                if let frame = try decoder.next() { return frame }
                let (bytes, descriptors): ([UInt8], [FileDescriptor])
                do {
                    if let deadline { try wait(until: deadline) }
                    (bytes, descriptors) = try socket.receive(max: 64 << 10)
                } catch {
                    decoder.close()
                    throw error == .messageTooLong ? .unexpectedDescriptors : .system(error)
                }
                if bytes.isEmpty {
                    for fd in descriptors { try? fd.close() }
                    decoder.close()
                    if decoder.isMidFrame { throw .truncated }
                    return nil
                }
                decoder.feed(bytes, descriptors: descriptors)
            }
        }

        private func wait(until deadline: UInt64) throws(Errno) {
            while true {
                let now = Kernel.monotonicNanoseconds()
                guard now < deadline else { throw .resourceTemporarilyUnavailable }
                var fd = pollfd(fd: socket.descriptor.rawValue, events: Int16(POLLIN), revents: 0)
                let r = poll(&fd, 1, Int32(clamping: (deadline - now) / 1_000_000 + 1))
                if r > 0 { return }
                if r < 0 && errno != EINTR { throw Errno(rawValue: errno) }
            }
        }
    }
}

// MARK: the messages

extension Session {
    /// The client's request (`Kind.request`).
    package struct Request: Sendable, Codable, Equatable {
        package enum Command: String, Sendable, Codable {
            case run
            case mcp
            case dryRun = "dry-run"
        }

        /// The profile: a name burrowd finds in its own search path, or a
        /// document the client read with its own rights (whose `extends`
        /// burrowd resolves by name in that search path only).
        package struct Profile: Sendable, Codable, Equatable {
            package var name: String?
            package var document: String?
            /// `toml` or `json`, with `document`.
            package var format: String?
            /// The file the client read `document` from (its messages name it).
            package var file: String?

            package init(name: String? = nil, document: String? = nil, format: String? = nil, file: String? = nil) {
                self.name = name
                self.document = document
                self.format = format
                self.file = file
            }
        }

        package var command: Command
        package var profile: Profile
        package var argv: [String]
        package var parameters: [String: String] = [:]
        /// The client's environment; only what the profile passes reaches the tool.
        package var environment: [String: String] = [:]
        package var workingDirectory: String
        /// `burrow run --without-mcp-relay`.
        package var withoutMcpRelay: Bool?
        /// `burrow dry-run --seccomp-listing`.
        package var seccompListing: Bool?
        /// `--manifest`: the signed manifest, read by the client with its own rights.
        package var manifest: Manifest?
        /// `burrow mcp --pin` (or PROFILE.pins): the pinned tool definitions.
        package var pins: Pins?

        /// A pins file's text as the client read it (nil: not there yet,
        /// so the first listing is approved and sent back), its name, and
        /// whether this session approves what the server lists.
        package struct Pins: Sendable, Codable, Equatable {
            package var document: String?
            package var file: String
            package var approve: Bool

            package init(document: String?, file: String, approve: Bool) {
                self.document = document
                self.file = file
                self.approve = approve
            }
        }

        /// A signed manifest's text and its signature file's, and the file the client read.
        package struct Manifest: Sendable, Codable, Equatable {
            package var document: String
            package var signature: String
            package var file: String

            package init(document: String, signature: String, file: String) {
                self.document = document
                self.signature = signature
                self.file = file
            }
        }

        package init(command: Command, profile: Profile, argv: [String], workingDirectory: String) {
            self.command = command
            self.profile = profile
            self.argv = argv
            self.workingDirectory = workingDirectory
        }

        private enum CodingKeys: String, CodingKey {
            case command, profile, argv, parameters, environment, workingDirectory, withoutMcpRelay, seccompListing, manifest, pins
        }

        /// `parameters` and `environment` may be left out (empty).
        package init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            command = try c.decode(Command.self, forKey: .command)
            profile = try c.decode(Profile.self, forKey: .profile)
            argv = try c.decode([String].self, forKey: .argv)
            parameters = try c.decodeIfPresent([String: String].self, forKey: .parameters) ?? [:]
            environment = try c.decodeIfPresent([String: String].self, forKey: .environment) ?? [:]
            workingDirectory = try c.decode(String.self, forKey: .workingDirectory)
            withoutMcpRelay = try c.decodeIfPresent(Bool.self, forKey: .withoutMcpRelay)
            manifest = try c.decodeIfPresent(Manifest.self, forKey: .manifest)
            pins = try c.decodeIfPresent(Pins.self, forKey: .pins)
            seccompListing = try c.decodeIfPresent(Bool.self, forKey: .seccompListing)
        }
    }

    /// A signal the client received, to pass on to the tool (`Kind.signal`).
    package struct Signal: Sendable, Codable, Equatable {
        package var number: Int32
        package init(number: Int32) { self.number = number }
    }

    /// The request was refused before anything ran (`Kind.refused`) or the
    /// run failed (`Kind.failed`): an `ErrorCode` name and a message.
    package struct Refusal: Sendable, Codable, Equatable {
        package var code: String
        package var message: String
        package var exitStatus: Int32
        /// The profile's findings, for `profile_invalid`.
        package var issues: [ProfileIssue]?

        package init(code: String, message: String, exitStatus: Int32, issues: [ProfileIssue]? = nil) {
            self.code = code
            self.message = message
            self.exitStatus = exitStatus
            self.issues = issues
        }
    }

    /// `burrow dry-run`'s answer (`Kind.plan`): the plan burrowd would run.
    package struct Plan: Sendable, Codable, Equatable {
        package var plan: LaunchPlan
        package var warnings: [ProfileIssue]
        package var seccompListing: String?

        package init(plan: LaunchPlan, warnings: [ProfileIssue], seccompListing: String?) {
            self.plan = plan
            self.warnings = warnings
            self.seccompListing = seccompListing
        }
    }

    /// The run's end (`Kind.finished`).
    package struct Finished: Sendable, Codable, Equatable {
        package var record: RunRecord
        /// Behind the relay: why it ended the session early.
        package var relayEndedBy: String?
        package var droppedLines: [String: Int]
        /// What the audit log could not take: the run's, and the relay's.
        package var problems: [String]
        /// The pins file's new text, when this session approved definitions (the client writes it).
        package var approvedPins: String?

        package init(record: RunRecord, relayEndedBy: String?, droppedLines: [String: Int], problems: [String], approvedPins: String? = nil) {
            self.record = record
            self.relayEndedBy = relayEndedBy
            self.droppedLines = droppedLines
            self.problems = problems
            self.approvedPins = approvedPins
        }
    }
}
