import Dispatch

/// Where a run's bookkeeping after its process has started runs (reading its output, watching
/// its process group, recording its end): threads of its own, apart from Swift's shared ones.
/// In a burst of due runs the HTTP API's requests and the scheduler no longer queue behind the
/// bookkeeping of 200 runs.
final class BookkeepingExecutor: TaskExecutor, Sendable {
    static let shared = BookkeepingExecutor()

    private let queue = DispatchQueue(label: "belfry.bookkeeping", qos: .utility, attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
