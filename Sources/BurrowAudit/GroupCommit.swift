#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Leader/follower group commit. Each caller queues its item and waits;
/// whichever caller finds no commit running becomes the leader, takes every
/// queued item and commits them in one transaction. Callers return only after
/// the transaction holding their item committed (or failed): acknowledged
/// means durable, and N concurrent callers cost one fsync, not N.
final class GroupCommit: @unchecked Sendable {
    struct Item {
        var events: [AuditEvent]
        var secrets: [String]
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var queue: [(ticket: Int, item: Item)] = []
    private var results: [Int: Result<[AuditEvent], AuditError>] = [:]
    private var nextTicket = 0
    private var busy = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Queues `item` and returns its events as stored, once committed.
    /// `commit` receives a batch and returns one result per item, in order.
    func submit(_ item: Item, commit: ([Item]) -> Result<[[AuditEvent]], AuditError>) throws(AuditError) -> [AuditEvent] {
        pthread_mutex_lock(mutex)
        let ticket = nextTicket
        nextTicket += 1
        queue.append((ticket, item))
        while results[ticket] == nil {
            if busy {
                pthread_cond_wait(condition, mutex)
                continue
            }
            busy = true
            let batch = queue
            queue.removeAll()
            pthread_mutex_unlock(mutex)
            let outcome = commit(batch.map(\.item))
            pthread_mutex_lock(mutex)
            for (i, entry) in batch.enumerated() {
                results[entry.ticket] = outcome.map { $0[i] }
            }
            busy = false
            pthread_cond_broadcast(condition)
        }
        let result = results.removeValue(forKey: ticket)
        pthread_mutex_unlock(mutex)
        switch result {
        case .success(let events): return events
        case .failure(let error): throw error
        case nil: preconditionFailure("group commit lost a result")
        }
    }

    /// Runs `body` while no commit runs (queries and single transactions on the writer's connection).
    func exclusive<T>(_ body: () throws(AuditError) -> T) throws(AuditError) -> T {
        pthread_mutex_lock(mutex)
        while busy { pthread_cond_wait(condition, mutex) }
        busy = true
        pthread_mutex_unlock(mutex)
        defer {
            pthread_mutex_lock(mutex)
            busy = false
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }
}
