/// The allow-listed `torch._utils._rebuild_*` functions, reimplemented as data: they turn a
/// storage reference and its view metadata into a `TensorRecord`. Signatures follow
/// `torch/_utils.py`; offsets and strides count elements.
enum TensorRebuild {
    typealias Failure = (String) -> CheckpointError

    static func rebuild(_ name: String, _ args: [PickleValue],
                        corrupt: Failure, unsupported: Failure) throws -> PickleValue {
        switch name {
        case "_rebuild_tensor", "_rebuild_tensor_v2":
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks, metadata])
            guard args.count >= 4 else { throw corrupt("\(name) needs 4 arguments, found \(args.count)") }
            return .tensor(try tensor(args, dtype: nil, name: name, corrupt: corrupt))
        case "_rebuild_tensor_v3":
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
            guard args.count >= 7 else { throw corrupt("\(name) needs 7 arguments, found \(args.count)") }
            guard case .global("torch", let dtypeName) = args[6] else {
                throw corrupt("\(name) dtype argument is a \(args[6].kindName), expected a torch dtype")
            }
            guard let dtype = DType(torchName: dtypeName) else {
                throw unsupported("tensor of dtype torch.\(dtypeName) (zoo reads \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return .tensor(try tensor(args, dtype: dtype, name: name, corrupt: corrupt))
        case "_rebuild_parameter", "_rebuild_parameter_with_state":
            // (data, requires_grad, backward_hooks[, state]): a Parameter is its data.
            guard let data = args.first?.tensor else {
                throw corrupt("\(name) expects a tensor first, found \(args.first?.kindName ?? "nothing")")
            }
            return .tensor(data)
        case "_rebuild_from_type_v2":
            // (func, new_type, args, state): a tensor subclass; `func(*args)` must itself be allow-listed.
            guard args.count >= 3, case .global(let module, let inner) = args[0], let innerArgs = args[2].elements else {
                throw corrupt("_rebuild_from_type_v2 arguments are not (function, type, args, state)")
            }
            guard module == "torch._utils", inner.hasPrefix("_rebuild"), inner != name else {
                throw corrupt("_rebuild_from_type_v2 wraps \(module).\(inner), which is not a tensor rebuild function")
            }
            return try rebuild(inner, innerArgs, corrupt: corrupt, unsupported: unsupported)
        case "_rebuild_qtensor":
            throw unsupported("quantized tensors are not supported; dequantize before saving (tensor.dequantize())")
        case "_rebuild_sparse_tensor", "_rebuild_sparse_csr_tensor":
            throw unsupported("sparse tensors are not supported; save tensor.to_dense() instead")
        default:
            throw unsupported("torch._utils.\(name) tensors (device-specific, nested or meta tensors) are not supported")
        }
    }

    private static func tensor(_ args: [PickleValue], dtype: DType?, name: String,
                               corrupt: Failure) throws -> TensorRecord {
        guard case .storage(let storage) = args[0] else {
            throw corrupt("\(name) expects a storage first, found \(args[0].kindName)")
        }
        guard let offset = args[1].int else { throw corrupt("\(name) storage offset is a \(args[1].kindName)") }
        let shape = try integers(args[2], what: "size", corrupt: corrupt)
        let strides = try integers(args[3], what: "stride", corrupt: corrupt)
        do {
            return try TensorRecord.validated(storage: storage, dtype: dtype ?? storage.dtype, shape: shape,
                                              strides: strides, storageOffset: offset)
        } catch let error as CheckpointError {
            throw corrupt(error.message)
        }
    }

    private static func integers(_ value: PickleValue, what: String, corrupt: Failure) throws -> [Int] {
        if let single = value.int { return [single] }  // very old files pickle a 1-d size as an int
        guard let items = value.elements else { throw corrupt("tensor \(what) is a \(value.kindName), expected a tuple") }
        return try items.map {
            guard let i = $0.int else { throw corrupt("tensor \(what) contains a \($0.kindName)") }
            return i
        }
    }
}
