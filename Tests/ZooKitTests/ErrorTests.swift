import Checkpoint
import Foundation
import Models
import Testing
import ZooKit

/// `error.localizedDescription`, the first thing a Swift caller prints, carries the message and the fix.
@Suite struct ErrorDescriptionTests {
    @Test func everyErrorTypeDescribesItself() {
        let zoo: Error = ZooError(.usage, "resnt50 is not in the catalog", fix: "zoo list shows the models")
        #expect(zoo.localizedDescription == "resnt50 is not in the catalog\n  fix: zoo list shows the models")
        #expect((zoo as? LocalizedError)?.recoverySuggestion == "zoo list shows the models")
        let model: Error = ModelError.badInput("expected 3 channels")
        #expect(model.localizedDescription == "bad input: expected 3 channels")
        let checkpoint: Error = CheckpointError(.corrupt, path: "x.pth", at: "data.pkl byte 12", "bad opcode 0xff")
        #expect(checkpoint.localizedDescription == "x.pth: data.pkl byte 12: bad opcode 0xff")
    }
}
