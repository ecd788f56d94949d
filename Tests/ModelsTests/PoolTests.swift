import CKernels
import Foundation
import Testing

/// CKernels' thread pool, called directly with two to four threads whatever this machine has:
/// every job of a round runs exactly once and only jobs of that round run, a share whose
/// thread is held up is taken over by the others, and a round started from inside a job runs
/// on the calling thread.
struct PoolTests {
    /// Which thread ran each job of a round (under an NSLock, a pthread mutex that
    /// ThreadSanitizer sees; it does not see Synchronization's Mutex on Linux).
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var runs: [(job: Int, thread: UInt)] = []
        let body: @Sendable (Log, Int) -> Void

        init(_ body: @escaping @Sendable (Log, Int) -> Void = { _, _ in }) { self.body = body }

        func record(_ job: Int) {
            let thread = PoolTests.currentThread
            lock.withLock { runs.append((job, thread)) }
            body(self, job)
        }

        var jobs: [Int] { lock.withLock { runs.map(\.job) } }

        func thread(of job: Int) -> UInt? { lock.withLock { runs.first { $0.job == job }?.thread } }

        /// Runs `jobs` jobs of this log on `threads` threads.
        func run(threads: Int, jobs: Int, mayWait: Bool = true) {
            let context = Unmanaged.passUnretained(self).toOpaque()
            let fn: zk_job_fn = { context, job in Unmanaged<Log>.fromOpaque(context!).takeUnretainedValue().record(Int(job)) }
            if mayWait { zk_parallel(Int32(threads), Int32(jobs), fn, context) }
            else { zk_parallel_nowait(Int32(threads), Int32(jobs), fn, context) }
        }
    }

    static var currentThread: UInt {
        #if canImport(Darwin)
        UInt(bitPattern: pthread_self())
        #else
        UInt(pthread_self())
        #endif
    }

    @Test func everyJobOfEveryRoundRunsOnce() {
        for round in 0 ..< 3000 {
            let threads = 2 + round % 3, jobs = 1 + round % 11
            let log = Log()
            log.run(threads: threads, jobs: jobs, mayWait: round % 2 == 0)
            #expect(log.jobs.sorted() == Array(0 ..< jobs), "round \(round): \(jobs) jobs on \(threads) threads")
        }
    }

    /// Job 0 is in the first thread's share with job 1; it waits until job 1 has run, which only
    /// another thread, having finished its own share, can do.
    @Test func aHeldUpShareIsTakenOver() {
        let log = Log { log, job in
            guard job == 0 else { return }
            let deadline = Date().addingTimeInterval(20)
            while log.thread(of: 1) == nil, Date() < deadline { usleep(100) }
        }
        log.run(threads: 2, jobs: 8)
        #expect(log.jobs.sorted() == Array(0 ..< 8))
        let first = log.thread(of: 0), second = log.thread(of: 1)
        #expect(first != nil && second != nil && first != second, "job 1 was not taken over while job 0 waited")
    }

    @Test func aRoundStartedInsideAJobRunsOnItsThread() {
        let inner = Log()
        let outer = Log { _, job in if job == 0 { inner.run(threads: 2, jobs: 6) } }
        outer.run(threads: 2, jobs: 2)
        let thread = outer.thread(of: 0)
        #expect(inner.jobs == Array(0 ..< 6))
        #expect((0 ..< 6).allSatisfy { inner.thread(of: $0) == thread })
    }
}
