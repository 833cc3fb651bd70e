import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowJSON
import BurrowMCP
import BurrowPolicy
import BurrowProfile
import BurrowRuntime
import BurrowSession
import BurrowSystem
import FoundationEssentials
import Logging
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's session socket (`[daemon] socket` with `-session` before
/// `.sock`, 0660 root:socket_group): where an unprivileged `burrow run`,
/// `burrow mcp` or `burrow dry-run` becomes a client. HTTP cannot pass
/// descriptors, so this socket speaks `Session`'s framed protocol, one
/// blocking thread per connection (the run itself is as blocking as
/// `burrow run`'s). Each connection: the peer from SO_PEERCRED and
/// SO_PEERGROUPS, the connection caps the API has, the runner role, the
/// request within `header_timeout`, the per-user admission of `[users]`,
/// then the one front door with the caller's identity: its grants checked
/// as the caller, its profile clamped by `[users]`, the tool's stdio the
/// caller's own descriptors (behind the relay for `mcp`), its signals
/// passed on. The client leaving stops the sandbox.
final class SessionServer: Sendable {
    let path: String
    private let listener: FileDescriptor
    private let daemon: Daemon
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)

    /// Serves `listener`, bound at `path` (see `bind`).
    init(daemon: Daemon, path: String, listener: FileDescriptor, logger: Logger) {
        self.path = path
        self.listener = listener
        self.daemon = daemon
        self.logger = logger
    }

    /// Binds the socket: 0660 root:`group` (root's only without a group).
    static func bind(_ path: String, group: gid_t?) throws(Errno) -> FileDescriptor {
        // A socket left by a burrowd that is gone; a live one refuses the bind.
        if let live = try? UnixSocket.connect(path) {
            live.close()
        } else {
            unlink(path)
        }
        let previous = umask(0o177)
        defer { umask(previous) }
        let listener = try UnixSocket.listen(path)
        _ = chown(path, uid_t.max, group ?? 0)
        _ = chmod(path, 0o660)
        return listener
    }

    /// Accepts connections on a thread of its own until `stop`.
    func start() throws(Errno) {
        try Kernel.detachedThread { [self] in
            while !stopping.load(ordering: .relaxed) {
                let socket: UnixSocket
                do {
                    socket = try UnixSocket.accept(listener)
                } catch {
                    if stopping.load(ordering: .relaxed) { break }
                    // EMFILE and kin: the connection waits in the backlog.
                    logger.warning("session socket: accept failed: \(error)")
                    usleep(10_000)
                    continue
                }
                do {
                    try Kernel.detachedThread { [self] in serve(socket) }
                } catch {
                    logger.warning("session socket: no thread for a connection: \(error)")
                    socket.close()
                }
            }
        }
    }

    /// Stops accepting and removes the socket (sessions already running go on
    /// until shutdown stops their sandboxes).
    func stop() {
        stopping.store(true, ordering: .relaxed)
        _ = shutdown(listener.rawValue, Int32(SHUT_RDWR))
        unlink(path)
    }

    // MARK: one connection

    private func serve(_ socket: UnixSocket) {
        let peer: (pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32])
        do {
            peer = try socket.peer()
        } catch {
            socket.close()
            return
        }
        let credential = PeerCredential(pid: peer.pid, uid: peer.uid, gid: peer.gid)
        let roles = daemon.access.roles(of: credential)
        let decision = daemon.connectionLimiter.admit(uid: peer.uid, privileged: roles.contains(.admin))
        defer { daemon.connectionLimiter.release(uid: peer.uid, decision) }
        let session = Connection(socket: socket, peer: credential, daemon: daemon)
        switch decision {
        case .dropped:
            socket.close()
            return
        case .refused(let code, let message):
            session.answer(.refused, code, message)
            socket.close()
            return
        case .admitted:
            break
        }
        // The whole request within header_timeout, however slowly it comes.
        let deadline = Kernel.monotonicNanoseconds() + daemon.policy.daemon.headerTimeout.milliseconds * 1_000_000
        try? socket.setTimeouts(receive: nil, send: .seconds(5))
        guard roles.contains(.runner) else {
            let name = UserDatabase.userName(peer.uid) ?? "uid:\(peer.uid)"
            let message =
                "\(name) (uid \(peer.uid)) may not run profiles through burrowd: it holds no runner role. An administrator adds it to [daemon] runners in /etc/burrow/burrow.toml (e.g. runners = [\"group:burrow\"], then `usermod -aG burrow \(name)`) and restarts burrowd"
            session.deny(
                tool: "session", RefusalDetails(reason: "role_required", message: message, role: Role.runner.rawValue, roles: roles.map(\.rawValue).sorted()))
            session.answer(.refused, .forbidden, message)
            socket.close()
            return
        }
        var reader = Session.Reader(socket, acceptingDescriptorsWith: [.request])
        let request: Session.Request
        let stdio: [FileDescriptor]
        do {
            guard let frame = try reader.next(deadline: deadline) else {
                socket.close()
                return
            }
            guard frame.kind == .request else {
                frame.closeDescriptors()
                throw SessionFailure(.invalidRequest, "the first frame must be the request")
            }
            stdio = frame.descriptors
            do {
                request = try StrictJSONDecoder(limits: Session.requestLimits).decode(Session.Request.self, from: frame.payload)
            } catch {
                frame.closeDescriptors()
                throw SessionFailure(.invalidRequest, "the request is not valid: \(error)")
            }
            let wanted = request.command == .dryRun ? 0 : 3
            guard stdio.count == wanted else {
                frame.closeDescriptors()
                throw SessionFailure(.invalidRequest, "\(request.command.rawValue) passes \(wanted) descriptors (stdin, stdout, stderr for run and mcp), not \(stdio.count)")
            }
        } catch {
            // Malformed requests are audited too (aggregated per caller and reason, like every refusal).
            let failure = error as? SessionFailure ?? SessionFailure(.invalidRequest, "\(error)")
            session.deny(tool: "session", RefusalDetails(reason: failure.code.name, message: failure.message))
            session.answer(.refused, failure.code, failure.message)
            socket.close()
            return
        }
        session.handle(request, stdio: stdio, reader: reader, groups: peer.groups)
        socket.close()
    }
}

/// A refusal before the front door: its code and message.
private struct SessionFailure: Error {
    var code: ErrorCode
    var message: String
    init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// One session: its socket (sends serialised: the supervisor's thread sends
/// violations while the connection's thread may answer), its peer, burrowd.
private final class Connection: Sendable {
    let socket: UnixSocket
    let peer: PeerCredential
    let daemon: Daemon
    private let sending = Mutex<Bool>(true)

    init(socket: UnixSocket, peer: PeerCredential, daemon: Daemon) {
        self.socket = socket
        self.peer = peer
        self.daemon = daemon
    }

    /// Sends a frame; false once a send failed (the client is gone, or stopped reading for 5 s).
    @discardableResult
    func send(_ kind: Session.Kind, _ value: some Encodable & Sendable) -> Bool {
        guard let frame = try? Session.Frame(kind, value) else { return false }
        return sending.withLock { ok in
            guard ok else { return false }
            do {
                try socket.send(frame.bytes)
            } catch {
                ok = false
            }
            return ok
        }
    }

    func answer(_ kind: Session.Kind, _ code: ErrorCode, _ message: String, issues: [ProfileIssue]? = nil, exitStatus: Int32? = nil) {
        send(kind, Session.Refusal(code: code.name, message: message, exitStatus: exitStatus ?? code.exitStatus, issues: issues))
    }

    /// Records a refusal (aggregated per caller, as the API's are).
    func deny(tool: String, _ details: RefusalDetails) {
        let (denials, peer) = (daemon.denials, peer)
        Task { await denials.record(caller: .local(peer), tool: tool, details) }
    }

    /// What the client's request names as the profile, as the front door takes it.
    static func source(_ p: Session.Request.Profile) throws(SessionFailure) -> ProfileSource {
        switch (p.name, p.document) {
        case (let name?, nil):
            // A name only: burrowd reads nothing a caller names by path.
            guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("."), !name.contains("/"), !name.contains("\0"), ConfigFormat(path: name) == nil else {
                throw SessionFailure(.invalidRequest, "profile name '\(name)': a name in burrowd's profile directories, without '/' or an extension")
            }
            return .reference(name)
        case (nil, let text?):
            let base = (p.file ?? "profile").split(separator: "/").last.map(String.init) ?? "profile"
            let stem = base.split(separator: ".").first.map(String.init) ?? "profile"
            let id = stem.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") } && !stem.isEmpty ? stem : "profile"
            switch p.format {
            case "toml":
                return .document(.string(text), id: id)
            case "json":
                do {
                    return .document(try JSONParser.parse(text, limits: DocumentLimits.json), id: id)
                } catch {
                    throw SessionFailure(.invalidRequest, "\(base): \(error)")
                }
            default:
                throw SessionFailure(.invalidRequest, "a profile document's format is toml or json")
            }
        default:
            throw SessionFailure(.invalidRequest, "give the profile's name or its document, one of them")
        }
    }

    func handle(_ request: Session.Request, stdio: [FileDescriptor], reader: Session.Reader, groups: [UInt32]) {
        var handedOver = false
        defer { if !handedOver { closeAll(stdio) } }
        let invocations = daemon.invocations
        let policy = daemon.policy
        let label = request.profile.name ?? request.profile.file ?? "profile"
        let dryRun = request.command == .dryRun
        func refuse(_ code: ErrorCode, _ message: String, issues: [ProfileIssue]? = nil, denied: Bool = true) {
            if denied { deny(tool: label, RefusalDetails(reason: code.name, message: message, profile: label, argv: request.argv)) }
            // dry-run exits 1 for a profile or command it cannot plan, as root's does.
            answer(.refused, code, message, issues: issues, exitStatus: dryRun && code != .forbidden ? 1 : nil)
        }
        let source: ProfileSource
        do throws(SessionFailure) {
            guard !request.argv.isEmpty else { throw SessionFailure(.invalidRequest, "no command to run") }
            guard request.workingDirectory.hasPrefix("/") else { throw SessionFailure(.invalidRequest, "the working directory must be an absolute path") }
            source = try Self.source(request.profile)
        } catch {
            refuse(error.code, error.message)
            return
        }
        if invocations.isDraining {
            refuse(.shuttingDown, "burrowd is shutting down; retry against the restarted service", denied: false)
            return
        }
        let caller = Caller(uid: peer.uid, pid: peer.pid)
        let credentials = CallerCredentials(uid: peer.uid, gid: peer.gid, groups: Array(Set(groups + [peer.gid])).sorted())

        // Per caller: sessions per minute and at once ([users]); a dry-run counts too, while it plans.
        let key = "session uid \(peer.uid)"
        do {
            try daemon.admission.admit(key, .init(requestsPerMinute: policy.users.runsPerMinute, maxConcurrent: policy.users.maxConcurrent))
        } catch {
            switch error {
            case .rate(let limit, let retry): refuse(.rateLimited, "a user may start \(limit) sessions per minute ([users] runs_per_minute); retry in \(retry) s")
            default: refuse(.tooManyConcurrent, "a user may run \(policy.users.maxConcurrent) sessions at once ([users] max_concurrent); retry when one ends")
            }
            return
        }
        let slot = Admission.Slot(daemon.admission, key)
        defer { slot.release() }

        if dryRun {
            plan(request, source: source, caller: caller, credentials: credentials, refuse: refuse)
            return
        }

        var ask = Invocations.Request(
            profile: source, argv: request.argv, parameters: request.parameters, environment: request.environment, workingDirectory: request.workingDirectory,
            mode: request.command == .mcp ? .relay : request.withoutMcpRelay == true ? .withoutRelay : .plain,
            relayRemedy: "use `burrow mcp`, or `burrow run --without-mcp-relay` to run it without that policy")
        ask.grantsCheckedAs = credentials
        ask.userCeilings = true
        ask.manifest = Self.manifest(request, uid: peer.uid)
        let prepared: PreparedInvocation
        do {
            prepared = try invocations.front.prepare(ask, caller: caller)
        } catch {
            refuse(error.code, error.message, issues: error.code == .profileInvalid ? error.issues : nil, denied: error.denied)
            return
        }
        let signals: SignalRelay
        do {
            signals = try SignalRelay()
        } catch {
            answer(.failed, error.code, error.description)
            return
        }
        handedOver = true
        // The client's frames from here: signals to pass on; its end of the
        // stream (it exited, or was killed) stops the sandbox. The watching
        // thread closes `ended` when it returns.
        let finished = Atomic<Bool>(false)
        let stop = prepared.stop
        try? socket.setTimeouts(receive: nil, send: .seconds(5))
        let ended = try? Kernel.pipe()
        let watching =
            ended != nil
            && (try? Kernel.detachedThread {
                var reader = reader
                // No frame after the request carries descriptors.
                reader.accept(descriptorsWith: [])
                while true {
                    guard let frame = try? reader.next() else { break }
                    frame.closeDescriptors()
                    guard frame.kind == .signal,
                        let signal = try? StrictJSONDecoder(limits: Session.requestLimits).decode(Session.Signal.self, from: frame.payload)
                    else { break }
                    signals.send(signal.number)
                }
                if !finished.load(ordering: .acquiring) { stop.stop("client_gone") }
                try? ended?.1.close()
            }) != nil
        if !watching { stop.stop("burrowd could not watch the client's connection") }
        // The client's pins (PROFILE.pins, --pin): held here, where the relay runs;
        // a set approved in this session goes back for the client to write.
        let approvedPins = Mutex<String?>(nil)
        var pins: PinnedDefinitions?
        if let sent = request.pins, request.command == .mcp {
            var existing: ToolPins?
            if let text = sent.document {
                guard let parsed = try? ToolPins.parse(Array(text.utf8)), parsed.server == prepared.plan.tool.id else {
                    answer(.failed, .invalidRequest, "\(sent.file): not a pins file of \(prepared.plan.tool.id)")
                    return
                }
                existing = parsed
            }
            pins =
                existing != nil && !sent.approve
                ? PinnedDefinitions(server: prepared.plan.tool.id, approved: existing, keep: { _ in .kept })
                : PinnedDefinitions(
                    server: prepared.plan.tool.id, approved: nil,
                    keep: { set in
                        approvedPins.withLock { $0 = String(decoding: set.encoded, as: UTF8.self) }
                        return .kept
                    })
        }
        let outcome = invocations.runSession(prepared, stdio: stdio, signals: signals, pins: pins) { [self] v in send(.violation, v) }
        finished.store(true, ordering: .releasing)
        switch outcome {
        case .success(let o):
            send(
                .finished,
                Session.Finished(
                    record: o.record, relayEndedBy: o.relayEndedBy, droppedLines: o.droppedLines, problems: o.problems, approvedPins: approvedPins.withLock { $0 }))
        case .failure(let error):
            answer(.failed, error.code, error.description)
        }
        // Wakes the watching thread; the caller closes the socket once it is gone.
        socket.shutdown()
        if let (done, notify) = ended {
            if !watching { try? notify.close() }
            var byte: UInt8 = 0
            while read(done.rawValue, &byte, 1) < 0 && errno == EINTR {}
            try? done.close()
        }
    }

    /// `burrow dry-run`: the plan `burrow run` would get, grants it could not reach shown as warnings.
    private func plan(
        _ request: Session.Request, source: ProfileSource, caller: Caller, credentials: CallerCredentials,
        refuse: (ErrorCode, String, [ProfileIssue]?, Bool) -> Void
    ) {
        let planner = daemon.invocations.planner
        let loading = planner.load(source, parameters: .supplied(request.parameters), caller: caller, ceilings: daemon.policy.users, readingAs: credentials)
        guard let loaded = loading.loaded else {
            refuse(.profileInvalid, "the profile is not valid", loading.issues, false)
            return
        }
        let plan: LaunchPlan
        do {
            plan = try planner.plan(
                loaded, argv: request.argv, environment: request.environment, workingDirectory: request.workingDirectory, sandboxID: nil, grantsCheckedAs: credentials,
                manifest: Self.manifest(request, uid: credentials.uid))
        } catch {
            refuse(error.kind == .plan ? .planRefused : error.kind == .trust ? .trustRefused : .manifestMismatch, error.description, nil, false)
            return
        }
        let file = loaded.files.first ?? request.profile.file ?? "profile"
        let unreachable = Invocations.unreachableGrants(plan).map {
            ProfileIssue(file: file, keyPath: "", message: "\($0): `burrow run` refuses this grant", severity: .warning)
        }
        let listing =
            request.seccompListing == true
            ? planner.compiler(environment: request.environment, workingDirectory: request.workingDirectory, sandboxID: nil).seccompListing(loaded.effective) : nil
        send(.plan, Session.Plan(plan: plan, warnings: loaded.warnings + unreachable, seccompListing: listing))
    }

    /// The manifest the client read and sent, as the front door takes it.
    /// Its label says who sent it: the file name is the client's word.
    static func manifest(_ request: Session.Request, uid: UInt32) -> ManifestSource? {
        request.manifest.map { .bytes(manifest: Array($0.document.utf8), signature: Array($0.signature.utf8), label: "\($0.file) (sent by uid \(uid))") }
    }

    private func closeAll(_ fds: [FileDescriptor]) { for fd in fds { try? fd.close() } }
}
