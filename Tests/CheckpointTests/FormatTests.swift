import Foundation
import Testing
@testable import Checkpoint

/// A scratch file removed when the test ends.
final class TemporaryFile {
    let path: String

    init(_ bytes: [UInt8], name: String = "file.pth") throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        path = folder.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    deinit { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
}

func refusal(_ bytes: [UInt8]) throws -> CheckpointError? {
    let file = try TemporaryFile(bytes)
    do {
        _ = try CheckpointFile(path: file.path)
        return nil
    } catch let error as CheckpointError {
        #expect(error.description.hasPrefix(file.path), "errors name the file")
        return error
    }
}

func fixtureBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
}

@Suite struct FormatTests {
    @Test(arguments: [
        ([UInt8](), "the file is empty"),
        (bytes("just some notes\n"), "text starting \"just some notes"),
        ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0], "a PNG image"),
        ([0x1F, 0x8B, 8, 0, 0, 0, 0, 0], "a gzip stream"),
        (bytes("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n"), "Git LFS pointer"),
        (bytes("PYTORCH1") + [0, 0, 0, 0], "PYTORCH1"),
        ([0x80, 2, 0x7D, 0x2E], "a plain Python pickle"),
        ([0x01, 0x02, 0x03, 0xFE, 0x05, 0x06, 0x07, 0x08, 0x09], "unknown bytes 01 02 03 fe"),
    ])
    func notACheckpoint(_ bytes: [UInt8], _ said: String) throws {
        let error = try refusal(bytes)
        #expect(error?.kind == .unsupported)
        #expect(error?.message.contains(said) == true, "\(String(describing: error))")
    }

    @Test func missingFile() {
        #expect(throws: CheckpointError.self) { try CheckpointFile(path: "/nonexistent/zoo/file.pth") }
    }

    @Test func sniffDecidesByBytesNotExtension() throws {
        let legacy = try TemporaryFile(try fixtureBytes("tiny_net_legacy.pth"), name: "model.safetensors")
        #expect(try CheckpointFile.sniff(path: legacy.path) == .legacy)
        let tar = try TemporaryFile(try fixtureBytes("tiny_net_tar.pth"), name: "model.zip")
        #expect(try CheckpointFile(path: tar.path).format == .tar)
    }

    @Test func everyTruncationOfALegacyFileIsRefused() throws {
        // Cut the file at many points: never a crash, always a corrupt-file error.
        let full = try fixtureBytes("tiny_net_legacy.pth")
        for length in stride(from: 16, to: full.count, by: 37) {
            let error = try refusal(Array(full.prefix(length)))
            #expect(error?.kind == .corrupt, "cut at \(length): \(String(describing: error))")
        }
    }

    @Test func everyTruncationOfATarFileIsRefused() throws {
        let full = try fixtureBytes("tiny_net_tar.pth")
        // Past the last member's data there is only zero padding, which a reader may lose.
        let end = try TarReader.members(try MappedFile(path: Fixtures.path("tiny_net_tar.pth"))).values.map(\.upperBound).max() ?? 0
        #expect(end > 4000)
        for length in stride(from: 300, to: end, by: 97) {
            #expect(try refusal(Array(full.prefix(length))) != nil, "cut at \(length)")
        }
    }

    @Test func legacyElementCountMismatch() throws {
        // The last storage's int64 count sits just before its data; make it disagree with the pickle.
        var bytes = try fixtureBytes("tiny_net_legacy.pth")
        let checkpoint = try CheckpointFile(path: Fixtures.path("tiny_net_legacy.pth"))
        let last = try #require(checkpoint.stateDict["5.fc.bias"])
        let countOffset = bytes.count - last.storage.byteCount - 8
        bytes[countOffset] &+= 1
        let error = try refusal(bytes)
        #expect(error?.message.contains("elements in the file but the pickle says") == true, "\(String(describing: error))")
    }

    @Test func zipRecordCorruptionIsCaughtByTheCRC() throws {
        // Flip one byte inside a stored storage record: libzip's CRC check refuses the read.
        var bytes = try fixtureBytes("tiny_net.pth")
        let checkpoint = try CheckpointFile(path: Fixtures.path("tiny_net.pth"))
        let weight = try checkpoint.data(of: try #require(checkpoint.stateDict["0.weight"]))
        let needle = Array(weight.prefix(16))
        let at = try #require(bytes.firstRange(of: needle)).lowerBound
        bytes[at + 3] ^= 0x01
        let file = try TemporaryFile(bytes)
        let damaged = try CheckpointFile(path: file.path)  // opening reads only data.pkl
        #expect(throws: CheckpointError.self) { try damaged.data(of: damaged.stateDict["0.weight"]!) }
    }

    @Test func truncatedZipNamesLibzipsReason() throws {
        let error = try refusal(Array(try fixtureBytes("tiny_net.pth").prefix(2000)))
        #expect(error?.kind == .corrupt)
        #expect(error?.message.contains("not a readable zip archive") == true)
    }

    @Test func safetensorsHeaderBounds() throws {
        var header = [UInt8](repeating: 0, count: 8)
        header[0] = 0xFF
        header[7] = 0x7F
        #expect(try refusal(header + bytes("{}"))?.kind != nil)
        let bad = bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}")
        let length = withUnsafeBytes(of: UInt64(bad.count).littleEndian, Array.init)
        let error = try refusal(length + bad + [0, 0, 0, 0])
        #expect(error?.message.contains("needs 8 bytes, its offsets span 4") == true, "\(String(describing: error))")
    }
}
