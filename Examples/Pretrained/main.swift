// The README's example: a pretrained model in one line, from any Swift program.
//
//     swift run example                 # the bundled demo model, offline
//     swift run example resnet50 x.npy  # any catalog model (downloads ~100 MB once) on a batch
import Foundation
import Models
import ZooKit

let arguments = CommandLine.arguments.dropFirst()
let name = arguments.first ?? "digits_resnet"
let model = try Zoo.pretrained(name)  // pulls, converts and verifies on first use
let batch = try arguments.dropFirst().first.map(NPY.read) ?? NPY.read(path: "demo/test_inputs.npy")
let logits = try model.forward(batch)
for (row, best) in logits.argmax().prefix(5).enumerated() {
    print("image \(row): class \(best)")
}
