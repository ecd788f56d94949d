import ZooKit

let model = try Zoo.pretrained("resnet50")          // pulled, converted and verified on first use
let batch = try Tensor.zeros([1, 3, 224, 224])      // your images, NCHW float32 (or zoo classify)
let top5 = try model.forward(batch).softmax().topK(5)[0]  // [(index, probability)], best first
let mine = try Zoo.load(path: "finetuned.pth")      // any checkpoint; architecture detected
let vgg = try await Zoo.pretrained("vgg16") { print("\($0.bytes) of \($0.total ?? 0) bytes") }
