import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a lock: the few process-wide settings, and values shared by the iterations
/// of `concurrentPerform` (ZooKit uses it too, hence `package`).
package final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    package init(_ value: Value) { self.value = value }
    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Many readers or one writer: forward passes share a model, a load excludes them.
final class ReadWriteLock: @unchecked Sendable {
    // Allocated once and never moved: pthread locks must keep their address.
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init() { pthread_rwlock_init(lock, nil) }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func write<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
