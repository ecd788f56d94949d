import Foundation
import ZooKit

let model = try Zoo.pretrained("resnet50")          // pulled, converted and verified on first use
let top5 = try model.classify(imageAt: URL(fileURLWithPath: "cat.jpg"), top: 5)  // labels and probabilities
let image = try RGBImage(width: 2, height: 1, pixels: [255, 0, 0, 0, 0, 255])  // or your own pixels
let batch = try model.preprocessing.tensor([image])  // [1, 3, 224, 224], exactly as torchvision
let logits = try model.forward(batch)               // [1, 1000]
let mine = try Zoo.load(path: "finetuned.pth")      // any checkpoint; architecture detected
let vgg = try await Zoo.pretrained("vgg16") { print("\($0.bytes) of \($0.total ?? 0) bytes") }
