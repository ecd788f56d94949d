// libFuzzer targets for zoo's readers. Built only by `scripts/fuzz` (ZOO_FUZZ=1 adds this
// target to the package), with `-sanitize=fuzzer,address`; libFuzzer supplies `main`.
// Every input must end in a thrown error or a complete read: a crash, a hang or a runaway
// allocation is a bug. The target is chosen by $ZOO_FUZZ_TARGET.
import Checkpoint
import Foundation
import Models
#if canImport(Glibc)
import Glibc
#endif

enum Target: String, CaseIterable {
    /// Raw pickle bytes, as `data.pkl` of a zip checkpoint.
    case pickle
    /// Whole files, forced through one reader whatever their first bytes say.
    case zip, legacy, tar, safetensors
    /// Architecture detection and model building from text lines `key d0 d1 ...`.
    case detect
}

let target: Target = {
    let name = ProcessInfo.processInfo.environment["ZOO_FUZZ_TARGET"] ?? ""
    guard let target = Target(rawValue: name) else {
        FileHandle.standardError.write(Data("set ZOO_FUZZ_TARGET to one of \(Target.allCases.map(\.rawValue))\n".utf8))
        exit(2)
    }
    return target
}()

/// Each input is written here and opened like any file (tmpfs: no disk writes).
let scratch = "/dev/shm/zoo-fuzz-\(getpid()).bin"

/// libFuzzer's driver, which runs `fuzz` over the corpus and mutations of it.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main`; hand it to libFuzzer.
@_cdecl("zoo_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch target {
    case .pickle:
        if let stateDict = try? Fuzzing.unpickle(bytes) { summarise(stateDict) }
    case .zip: open(bytes, as: .zip)
    case .legacy: open(bytes, as: .legacy)
    case .tar: open(bytes, as: .tar)
    case .safetensors: open(bytes, as: .safetensors)
    case .detect: detect(String(decoding: bytes, as: UTF8.self))
    }
    return 0
}

func summarise(_ stateDict: StateDict) {
    _ = try? JSONEncoder().encode(stateDict.metadata.map(\.value))
    _ = stateDict.keys
}

/// Opens the file and reads everything a user could ask for: every tensor by every path,
/// the metadata, the architecture and, when one is detected, the loaded model.
func open(_ bytes: UnsafeRawBufferPointer, as format: CheckpointFormat) {
    let fd = Glibc.open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return }
    var written = 0
    while written < bytes.count {
        let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
        guard n > 0 else { break }
        written += n
    }
    close(fd)
    guard let checkpoint = try? CheckpointFile(path: scratch, format: format) else { return }
    summarise(checkpoint.stateDict)
    for (_, tensor) in checkpoint.stateDict.entries {
        _ = try? checkpoint.data(of: tensor)
        _ = try? checkpoint.floats(of: tensor)
        try? checkpoint.streamElements(of: tensor, chunkBytes: 64) { _ in }
        _ = try? checkpoint.withUnsafeElements(of: tensor, as: Float.self) { $0.reduce(0, +) }
    }
    if let architecture = try? Architecture.detect(checkpoint) {
        _ = try? architecture.build().load(checkpoint, options: .nonStrict)
    }
}

/// A state dict given as shapes only; values are zeros.
struct Shapes: TensorSource {
    var tensorShapes: [(key: String, shape: [Int])]
    func floats(for key: String) throws -> [Float] {
        let shape = tensorShapes.first { $0.key == key }?.shape ?? []
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count <= 1 << 20 else { throw CocoaError(.fileReadTooLarge) }
        return [Float](repeating: 0, count: count)
    }
}

func detect(_ text: String) {
    let shapes = text.split(separator: "\n").prefix(4096).compactMap { line -> (key: String, shape: [Int])? in
        let fields = line.split(separator: " ")
        guard let key = fields.first else { return nil }
        return (String(key), fields.dropFirst().prefix(8).compactMap { Int($0) }.map { max($0, 0) })
    }
    let source = Shapes(tensorShapes: shapes)
    guard let architecture = try? Architecture.detect(source) else { return }
    let model = architecture.build()
    _ = model.namedParameters.count
    for size in [1, 7, 32, 224] {
        _ = try? model.outputShape(for: [1, 3, size, size])
        _ = try? model.flops(for: [1, 3, size, size])
    }
    guard model.namedParameters.allSatisfy({ $0.parameter.count <= 1 << 20 }) else { return }
    _ = try? model.load(source, options: .nonStrict)
    if (try? model.outputShape(for: [1, 3, 32, 32])) != nil {
        _ = try? model.forward(try Tensor.zeros([1, 3, 32, 32]))
    }
}
