"""FILES of client/_proto_schema.py, serialized by ``python -m client._proto_schema``.

Loading these bytes spares every client start the import of descriptor_pb2 and the building
of the descriptors (about 15 ms). Do not edit: change _proto_schema.py and run the command
again; tests/test_client_protos.py fails while the two differ.
"""

FILES = (
    (
        b'\n%tensorflow/core/framework/types.proto\x12\ntensorflow"9\n\x0fSerializedDType\x12&\n'
        b'\x08datatype\x18\x01 \x01(\x0e2\x14.tensorflow.DataType*\xda\t\n\x08DataType\x12\x0e\n\nD'
        b'T_INVALID\x10\x00\x12\x0c\n\x08DT_FLOAT\x10\x01\x12\r\n\tDT_DOUBLE\x10\x02\x12\x0c\n\x08D'
        b'T_INT32\x10\x03\x12\x0c\n\x08DT_UINT8\x10\x04\x12\x0c\n\x08DT_INT16\x10\x05\x12\x0b\n\x07'
        b'DT_INT8\x10\x06\x12\r\n\tDT_STRING\x10\x07\x12\x10\n\x0cDT_COMPLEX64\x10\x08\x12\x0c\n'
        b'\x08DT_INT64\x10\t\x12\x0b\n\x07DT_BOOL\x10\n\x12\x0c\n\x08DT_QINT8\x10\x0b\x12\r\n\tDT_Q'
        b'UINT8\x10\x0c\x12\r\n\tDT_QINT32\x10\r\x12\x0f\n\x0bDT_BFLOAT16\x10\x0e\x12\r\n\tDT_QINT1'
        b'6\x10\x0f\x12\x0e\n\nDT_QUINT16\x10\x10\x12\r\n\tDT_UINT16\x10\x11\x12\x11\n\rDT_COMPLEX1'
        b'28\x10\x12\x12\x0b\n\x07DT_HALF\x10\x13\x12\x0f\n\x0bDT_RESOURCE\x10\x14\x12\x0e\n\nDT_VA'
        b'RIANT\x10\x15\x12\r\n\tDT_UINT32\x10\x16\x12\r\n\tDT_UINT64\x10\x17\x12\x12\n\x0eDT_FLOAT'
        b'8_E5M2\x10\x18\x12\x14\n\x10DT_FLOAT8_E4M3FN\x10\x19\x12\x16\n\x12DT_FLOAT8_E4M3FNUZ\x10'
        b'\x1a\x12\x19\n\x15DT_FLOAT8_E4M3B11FNUZ\x10\x1b\x12\x16\n\x12DT_FLOAT8_E5M2FNUZ\x10\x1c'
        b'\x12\x0b\n\x07DT_INT4\x10\x1d\x12\x0c\n\x08DT_UINT4\x10\x1e\x12\x0b\n\x07DT_INT2\x10\x1f'
        b'\x12\x0c\n\x08DT_UINT2\x10 \x12\x14\n\x10DT_FLOAT4_E2M1FN\x10!\x12\x10\n\x0cDT_FLOAT_REF'
        b'\x10e\x12\x11\n\rDT_DOUBLE_REF\x10f\x12\x10\n\x0cDT_INT32_REF\x10g\x12\x10\n\x0cDT_UINT8_'
        b'REF\x10h\x12\x10\n\x0cDT_INT16_REF\x10i\x12\x0f\n\x0bDT_INT8_REF\x10j\x12\x11\n\rDT_STRIN'
        b'G_REF\x10k\x12\x14\n\x10DT_COMPLEX64_REF\x10l\x12\x10\n\x0cDT_INT64_REF\x10m\x12\x0f\n'
        b'\x0bDT_BOOL_REF\x10n\x12\x10\n\x0cDT_QINT8_REF\x10o\x12\x11\n\rDT_QUINT8_REF\x10p\x12\x11'
        b'\n\rDT_QINT32_REF\x10q\x12\x13\n\x0fDT_BFLOAT16_REF\x10r\x12\x11\n\rDT_QINT16_REF\x10s'
        b'\x12\x12\n\x0eDT_QUINT16_REF\x10t\x12\x11\n\rDT_UINT16_REF\x10u\x12\x15\n\x11DT_COMPLEX12'
        b'8_REF\x10v\x12\x0f\n\x0bDT_HALF_REF\x10w\x12\x13\n\x0fDT_RESOURCE_REF\x10x\x12\x12\n\x0eD'
        b'T_VARIANT_REF\x10y\x12\x11\n\rDT_UINT32_REF\x10z\x12\x11\n\rDT_UINT64_REF\x10{\x12\x16\n'
        b'\x12DT_FLOAT8_E5M2_REF\x10|\x12\x18\n\x14DT_FLOAT8_E4M3FN_REF\x10}\x12\x1a\n\x16DT_FLOAT8'
        b'_E4M3FNUZ_REF\x10~\x12\x1d\n\x19DT_FLOAT8_E4M3B11FNUZ_REF\x10\x7f\x12\x1b\n\x16DT_FLOAT8_'
        b'E5M2FNUZ_REF\x10\x80\x01\x12\x10\n\x0bDT_INT4_REF\x10\x81\x01\x12\x11\n\x0cDT_UINT4_REF'
        b'\x10\x82\x01\x12\x10\n\x0bDT_INT2_REF\x10\x83\x01\x12\x11\n\x0cDT_UINT2_REF\x10\x84\x01'
        b'\x12\x19\n\x14DT_FLOAT4_E2M1FN_REF\x10\x85\x01b\x06proto3'
    ),
    (
        b'\n,tensorflow/core/framework/tensor_shape.proto\x12\ntensorflow"z\n\x10TensorShapeProto'
        b'\x12-\n\x03dim\x18\x02 \x03(\x0b2 .tensorflow.TensorShapeProto.Dim\x12\x14\n\x0cunknown_r'
        b'ank\x18\x03 \x01(\x08\x1a!\n\x03Dim\x12\x0c\n\x04size\x18\x01 \x01(\x03\x12\x0c\n\x04name'
        b'\x18\x02 \x01(\tb\x06proto3'
    ),
    (
        b'\n/tensorflow/core/framework/resource_handle.proto\x12\ntensorflow\x1a,tensorflow/core/fr'
        b'amework/tensor_shape.proto\x1a%tensorflow/core/framework/types.proto"\x9f\x02\n\x13Resour'
        b'ceHandleProto\x12\x0e\n\x06device\x18\x01 \x01(\t\x12\x11\n\tcontainer\x18\x02 \x01(\t'
        b'\x12\x0c\n\x04name\x18\x03 \x01(\t\x12\x11\n\thash_code\x18\x04 \x01(\x04\x12\x17\n\x0fma'
        b'ybe_type_name\x18\x05 \x01(\t\x12H\n\x11dtypes_and_shapes\x18\x06 \x03(\x0b2-.tensorflow.'
        b'ResourceHandleProto.DtypeAndShape\x1aa\n\rDtypeAndShape\x12#\n\x05dtype\x18\x01 \x01(\x0e'
        b'2\x14.tensorflow.DataType\x12+\n\x05shape\x18\x02 \x01(\x0b2\x1c.tensorflow.TensorShapePr'
        b'otob\x06proto3'
    ),
    (
        b'\n&tensorflow/core/framework/tensor.proto\x12\ntensorflow\x1a/tensorflow/core/framework/r'
        b'esource_handle.proto\x1a,tensorflow/core/framework/tensor_shape.proto\x1a%tensorflow/core'
        b'/framework/types.proto"\xf8\x03\n\x0bTensorProto\x12#\n\x05dtype\x18\x01 \x01(\x0e2\x14.t'
        b'ensorflow.DataType\x122\n\x0ctensor_shape\x18\x02 \x01(\x0b2\x1c.tensorflow.TensorShapePr'
        b'oto\x12\x16\n\x0eversion_number\x18\x03 \x01(\x05\x12\x16\n\x0etensor_content\x18\x04 '
        b'\x01(\x0c\x12\x10\n\x08half_val\x18\r \x03(\x05\x12\x11\n\tfloat_val\x18\x05 \x03(\x02'
        b'\x12\x12\n\ndouble_val\x18\x06 \x03(\x01\x12\x0f\n\x07int_val\x18\x07 \x03(\x05\x12\x12\n'
        b'\nstring_val\x18\x08 \x03(\x0c\x12\x14\n\x0cscomplex_val\x18\t \x03(\x02\x12\x11\n\tint64'
        b'_val\x18\n \x03(\x03\x12\x10\n\x08bool_val\x18\x0b \x03(\x08\x12\x14\n\x0cdcomplex_val'
        b'\x18\x0c \x03(\x01\x12<\n\x13resource_handle_val\x18\x0e \x03(\x0b2\x1f.tensorflow.Resour'
        b'ceHandleProto\x127\n\x0bvariant_val\x18\x0f \x03(\x0b2".tensorflow.VariantTensorDataProto'
        b'\x12\x12\n\nuint32_val\x18\x10 \x03(\r\x12\x12\n\nuint64_val\x18\x11 \x03(\x04\x12\x12\n'
        b'\nfloat8_val\x18\x12 \x01(\x0c"g\n\x16VariantTensorDataProto\x12\x11\n\ttype_name\x18\x01'
        b' \x01(\t\x12\x10\n\x08metadata\x18\x02 \x01(\x0c\x12(\n\x07tensors\x18\x03 \x03(\x0b2\x17'
        b'.tensorflow.TensorProtob\x06proto3'
    ),
    (
        b'\n"xla/tsl/protobuf/error_codes.proto\x12\x10tensorflow.error*\x84\x03\n\x04Code\x12\x06'
        b'\n\x02OK\x10\x00\x12\r\n\tCANCELLED\x10\x01\x12\x0b\n\x07UNKNOWN\x10\x02\x12\x14\n\x10INV'
        b'ALID_ARGUMENT\x10\x03\x12\x15\n\x11DEADLINE_EXCEEDED\x10\x04\x12\r\n\tNOT_FOUND\x10\x05'
        b'\x12\x12\n\x0eALREADY_EXISTS\x10\x06\x12\x15\n\x11PERMISSION_DENIED\x10\x07\x12\x13\n\x0f'
        b'UNAUTHENTICATED\x10\x10\x12\x16\n\x12RESOURCE_EXHAUSTED\x10\x08\x12\x17\n\x13FAILED_PRECO'
        b'NDITION\x10\t\x12\x0b\n\x07ABORTED\x10\n\x12\x10\n\x0cOUT_OF_RANGE\x10\x0b\x12\x11\n\rUNI'
        b'MPLEMENTED\x10\x0c\x12\x0c\n\x08INTERNAL\x10\r\x12\x0f\n\x0bUNAVAILABLE\x10\x0e\x12\r\n\t'
        b'DATA_LOSS\x10\x0f\x12K\nGDO_NOT_USE_RESERVED_FOR_FUTURE_EXPANSION_USE_DEFAULT_IN_SWITCH_I'
        b'NSTEAD_\x10\x14b\x06proto3'
    ),
    (
        b'\n)tensorflow/core/protobuf/meta_graph.proto\x12\ntensorflow\x1a&tensorflow/core/framewor'
        b'k/tensor.proto\x1a,tensorflow/core/framework/tensor_shape.proto\x1a%tensorflow/core/frame'
        b'work/types.proto"\xa0\x02\n\nTensorInfo\x12\x0e\n\x04name\x18\x01 \x01(\tH\x00\x126\n\nco'
        b'o_sparse\x18\x04 \x01(\x0b2 .tensorflow.TensorInfo.CooSparseH\x00\x12#\n\x05dtype\x18\x02'
        b' \x01(\x0e2\x14.tensorflow.DataType\x122\n\x0ctensor_shape\x18\x03 \x01(\x0b2\x1c.tensorf'
        b'low.TensorShapeProto\x1ae\n\tCooSparse\x12\x1a\n\x12values_tensor_name\x18\x01 \x01(\t'
        b'\x12\x1b\n\x13indices_tensor_name\x18\x02 \x01(\t\x12\x1f\n\x17dense_shape_tensor_name'
        b'\x18\x03 \x01(\tB\n\n\x08encoding"\xa4\x03\n\x0cSignatureDef\x124\n\x06inputs\x18\x01 '
        b'\x03(\x0b2$.tensorflow.SignatureDef.InputsEntry\x126\n\x07outputs\x18\x02 \x03(\x0b2%.ten'
        b'sorflow.SignatureDef.OutputsEntry\x12\x13\n\x0bmethod_name\x18\x03 \x01(\t\x128\n\x08defa'
        b'ults\x18\x04 \x03(\x0b2&.tensorflow.SignatureDef.DefaultsEntry\x1aE\n\x0bInputsEntry\x12'
        b'\x0b\n\x03key\x18\x01 \x01(\t\x12%\n\x05value\x18\x02 \x01(\x0b2\x16.tensorflow.TensorInf'
        b'o:\x028\x01\x1aF\n\x0cOutputsEntry\x12\x0b\n\x03key\x18\x01 \x01(\t\x12%\n\x05value\x18'
        b'\x02 \x01(\x0b2\x16.tensorflow.TensorInfo:\x028\x01\x1aH\n\rDefaultsEntry\x12\x0b\n\x03ke'
        b'y\x18\x01 \x01(\t\x12&\n\x05value\x18\x02 \x01(\x0b2\x17.tensorflow.TensorProto:\x028\x01'
        b'b\x06proto3'
    ),
    (
        b'\n#tensorflow_serving/apis/model.proto\x12\x12tensorflow.serving\x1a\x1egoogle/protobuf/w'
        b'rappers.proto"\x8c\x01\n\tModelSpec\x12\x0c\n\x04name\x18\x01 \x01(\t\x12.\n\x07version'
        b'\x18\x02 \x01(\x0b2\x1b.google.protobuf.Int64ValueH\x00\x12\x17\n\rversion_label\x18\x04 '
        b'\x01(\tH\x00\x12\x16\n\x0esignature_name\x18\x03 \x01(\tB\x10\n\x0eversion_choiceb\x06pro'
        b'to3'
    ),
    (
        b'\n%tensorflow_serving/apis/predict.proto\x12\x12tensorflow.serving\x1a&tensorflow/core/fr'
        b'amework/tensor.proto\x1a#tensorflow_serving/apis/model.proto"\xe2\x01\n\x0ePredictRequest'
        b'\x121\n\nmodel_spec\x18\x01 \x01(\x0b2\x1d.tensorflow.serving.ModelSpec\x12>\n\x06inputs'
        b'\x18\x02 \x03(\x0b2..tensorflow.serving.PredictRequest.InputsEntry\x12\x15\n\routput_filt'
        b'er\x18\x03 \x03(\t\x1aF\n\x0bInputsEntry\x12\x0b\n\x03key\x18\x01 \x01(\t\x12&\n\x05value'
        b'\x18\x02 \x01(\x0b2\x17.tensorflow.TensorProto:\x028\x01"\xd0\x01\n\x0fPredictResponse'
        b'\x121\n\nmodel_spec\x18\x02 \x01(\x0b2\x1d.tensorflow.serving.ModelSpec\x12A\n\x07outputs'
        b'\x18\x01 \x03(\x0b20.tensorflow.serving.PredictResponse.OutputsEntry\x1aG\n\x0cOutputsEnt'
        b'ry\x12\x0b\n\x03key\x18\x01 \x01(\t\x12&\n\x05value\x18\x02 \x01(\x0b2\x17.tensorflow.Ten'
        b'sorProto:\x028\x01b\x06proto3'
    ),
    (
        b'\n0tensorflow_serving/apis/get_model_metadata.proto\x12\x12tensorflow.serving\x1a\x19goog'
        b'le/protobuf/any.proto\x1a)tensorflow/core/protobuf/meta_graph.proto\x1a#tensorflow_servin'
        b'g/apis/model.proto"\xae\x01\n\x0fSignatureDefMap\x12L\n\rsignature_def\x18\x01 \x03(\x0b2'
        b'5.tensorflow.serving.SignatureDefMap.SignatureDefEntry\x1aM\n\x11SignatureDefEntry\x12'
        b"\x0b\n\x03key\x18\x01 \x01(\t\x12'\n\x05value\x18\x02 \x01(\x0b2\x18.tensorflow.Signature"
        b'Def:\x028\x01"d\n\x17GetModelMetadataRequest\x121\n\nmodel_spec\x18\x01 \x01(\x0b2\x1d.te'
        b'nsorflow.serving.ModelSpec\x12\x16\n\x0emetadata_field\x18\x02 \x03(\t"\xe2\x01\n\x18GetM'
        b'odelMetadataResponse\x121\n\nmodel_spec\x18\x01 \x01(\x0b2\x1d.tensorflow.serving.ModelSp'
        b'ec\x12L\n\x08metadata\x18\x02 \x03(\x0b2:.tensorflow.serving.GetModelMetadataResponse.Met'
        b'adataEntry\x1aE\n\rMetadataEntry\x12\x0b\n\x03key\x18\x01 \x01(\t\x12#\n\x05value\x18\x02'
        b' \x01(\x0b2\x14.google.protobuf.Any:\x028\x01b\x06proto3'
    ),
    (
        b'\n$tensorflow_serving/apis/status.proto\x12\x12tensorflow.serving\x1a"xla/tsl/protobuf/er'
        b'ror_codes.proto"P\n\x0bStatusProto\x12*\n\nerror_code\x18\x01 \x01(\x0e2\x16.tensorflow.e'
        b'rror.Code\x12\x15\n\rerror_message\x18\x02 \x01(\tb\x06proto3'
    ),
    (
        b'\n.tensorflow_serving/apis/get_model_status.proto\x12\x12tensorflow.serving\x1a#tensorflo'
        b'w_serving/apis/model.proto\x1a$tensorflow_serving/apis/status.proto"J\n\x15GetModelStatus'
        b'Request\x121\n\nmodel_spec\x18\x01 \x01(\x0b2\x1d.tensorflow.serving.ModelSpec"\xe8\x01\n'
        b'\x12ModelVersionStatus\x12\x0f\n\x07version\x18\x01 \x01(\x03\x12;\n\x05state\x18\x02 '
        b'\x01(\x0e2,.tensorflow.serving.ModelVersionStatus.State\x12/\n\x06status\x18\x03 \x01('
        b'\x0b2\x1f.tensorflow.serving.StatusProto"S\n\x05State\x12\x0b\n\x07UNKNOWN\x10\x00\x12\t'
        b'\n\x05START\x10\n\x12\x0b\n\x07LOADING\x10\x14\x12\r\n\tAVAILABLE\x10\x1e\x12\r\n\tUNLOAD'
        b'ING\x10(\x12\x07\n\x03END\x102"^\n\x16GetModelStatusResponse\x12D\n\x14model_version_stat'
        b'us\x18\x01 \x03(\x0b2&.tensorflow.serving.ModelVersionStatusb\x06proto3'
    ),
)
