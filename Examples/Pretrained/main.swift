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
let classes = logits.shape[1]
for row in 0 ..< min(batch.shape[0], 5) {
    let scores = logits.data[row * classes ..< (row + 1) * classes]
    let best = scores.indices.max { scores[$0] < scores[$1] }.map { $0 - row * classes } ?? -1
    print("image \(row): class \(best)")
}
