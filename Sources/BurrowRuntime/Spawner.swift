import BurrowSystem
import CBurrowChild
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// burrow-spawner, the small helper that clones sandboxes for a large
/// process (burrowd): cloning copies the caller's address space, twice with
/// the sandbox's init, and from a process with tens of MiB touched that costs
/// milliseconds per sandbox. The sandbox is still this process's child
/// (CLONE_PARENT), so its pidfd can be waited for here, and its parent-death
/// signal follows the thread that started the spawner, which lives as long as
/// this process.
package final class Spawner: Sendable {
    private struct Channel: @unchecked Sendable {
        var socket: FileDescriptor
        var buffer: UnsafeMutablePointer<UInt8>
    }

    /// Requests go one at a time (each is a short clone3 in the helper).
    private let channel: Mutex<Channel?>
    package let executable: String
    static let bufferSize = 16 << 20

    private init(socket: FileDescriptor, executable: String) {
        self.executable = executable
        channel = Mutex(Channel(socket: socket, buffer: .allocate(capacity: Self.bufferSize)))
    }

    /// burrow-spawner beside this process's executable, if it is there.
    package static var besideExecutable: String? {
        guard let exe = LiveFileSystem().readLink("/proc/self/exe") else { return nil }
        let path = String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/burrow-spawner"
        return access(path, X_OK) == 0 ? path : nil
    }

    /// Starts the helper from a thread that then parks for the rest of this
    /// process's life (the parent-death signals of the helper and of every
    /// sandbox it clones follow that thread).
    package static func start(_ executable: String) throws(RunError) -> Spawner {
        let (mine, theirs): (FileDescriptor, FileDescriptor)
        do {
            (mine, theirs) = try Kernel.socketPair()
        } catch {
            throw .preparation("cannot create the spawner's socket: \(error)")
        }
        let parked = ParkedStart(executable: executable, socket: theirs.rawValue)
        do {
            try Kernel.detachedThread { parked.run() }
        } catch {
            try? mine.close()
            try? theirs.close()
            throw .preparation("cannot start the spawner's thread: \(errnoName(error.rawValue))")
        }
        // A plan travels as one message, bounded by the send buffer: room for
        // the largest request burrowd accepts (root may exceed wmem_max).
        var size = Int32(Self.bufferSize)
        _ = setsockopt(mine.rawValue, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        while !parked.started.load(ordering: .acquiring) { usleep(100) }
        try? theirs.close()
        if let error = parked.result.withLock({ $0 }), error != 0 {
            try? mine.close()
            throw .preparation("cannot start \(executable): \(errnoName(error))")
        }
        return Spawner(socket: mine, executable: executable)
    }

    enum Outcome {
        /// clone3's errno (0: done), the child's pid and pidfd.
        case spawned(errno: Int32, pid: pid_t, pidfd: Int32, preparedNetwork: Bool)
        /// The caller must clone in process, for this reason.
        case unavailable(String)
    }

    /// Clones the sandbox `plan` describes through the helper.
    func spawn(_ plan: UnsafePointer<brw_child_plan>) -> Outcome {
        channel.withLock { c in
            guard let ch = c else { return .unavailable("\(executable) is gone") }
            var pid: pid_t = 0
            var pidfd: Int32 = -1
            var flags: UInt32 = 0
            let rc = brw_spawner_request(ch.socket.rawValue, plan, ch.buffer, Self.bufferSize, &pid, &pidfd, &flags)
            if rc == EPIPE || rc == ECONNRESET || rc == EPROTO {
                try? ch.socket.close()
                ch.buffer.deallocate()
                c = nil
                return .unavailable("\(executable) is gone (\(errnoName(rc)))")
            }
            if rc == EMSGSIZE || rc == E2BIG {
                return .unavailable("the plan is larger than \(executable)'s socket takes")
            }
            return .spawned(errno: rc, pid: pid, pidfd: pidfd, preparedNetwork: flags & UInt32(BRW_SPAWNED_PREPARED_NET) != 0)
        }
    }
}

/// The parked thread's work: posix_spawn the helper with the socket as fd 3, report, park.
private final class ParkedStart: @unchecked Sendable {
    let executable: String
    let socket: Int32
    let result = Mutex<Int32?>(nil)
    let started = Atomic<Bool>(false)

    init(executable: String, socket: Int32) {
        self.executable = executable
        self.socket = socket
    }

    func run() {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, socket, 3)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("burrow-spawner"), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [nil]
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        posix_spawn_file_actions_destroy(&actions)
        free(argv[0])
        result.withLock { $0 = rc }
        started.store(true, ordering: .releasing)
        guard rc == 0 else { return }
        // Park: this thread is the real parent of the helper and of every sandbox.
        while true { pause() }
    }
}
