import Foundation

extension Zoo {
    /// A ready model with pretrained weights, for async code: from the cache, or pulled,
    /// converted and verified first, on a thread of its own (the downloading, hashing and
    /// converting never block the concurrency pool).
    ///
    /// ```swift
    /// let model = try await Zoo.pretrained("resnet50") { print("\($0.bytes) of \($0.total ?? 0) bytes") }
    /// ```
    ///
    /// Cancelling the calling task stops a download within a quarter of a second with
    /// `CancellationError`; the partial file stays in the cache, and the next pull resumes it.
    /// - Parameters:
    ///   - name: a catalog name or alias (`resnet50`, `vgg16_bn.imagenet1k_v1`) or a cached model's name.
    ///   - progress: called with the bytes downloaded so far, on a background thread.
    public static func pretrained(_ name: String, progress: (@Sendable (DownloadProgress) -> Void)? = nil) async throws -> PretrainedModel {
        try await Zoo(progress: false).pretrained(name, progress: progress)
    }

    /// `Zoo.pretrained(_:progress:)` with this catalog and cache.
    public func pretrained(_ name: String, progress: (@Sendable (DownloadProgress) -> Void)? = nil) async throws -> PretrainedModel {
        let flag = CancellationFlag()
        var zoo = self
        zoo.downloader.onProgress = progress
        zoo.downloader.cancellation = flag
        return try await withTaskCancellationHandler { [zoo] in
            try Task.checkCancellation()
            return try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result { try zoo.pretrained(name) })
                }
            }
        } onCancel: {
            flag.cancel()
        }
    }
}
