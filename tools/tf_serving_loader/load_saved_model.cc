// Runs a SavedModel's signature the way TensorFlow Serving does: tensorflow::LoadSavedModel into a
// session (variables restored through the graph's saver, assets through the asset file defs), then
// Session::Run on the signature's tensor names. TF Serving's SavedModelBundle loading is this code
// without the server around it.
//
//   load_saved_model EXPORT_DIR SIGNATURE OUTPUT_DIR KEY=TENSOR_PROTO_FILE...
//
// Each input is a serialized tensorflow.TensorProto; each output of the signature is written to
// OUTPUT_DIR/<output key>.pb the same way. Errors go to stderr with exit status 1.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/public/session_options.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << message << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Fail("usage: load_saved_model EXPORT_DIR SIGNATURE OUTPUT_DIR KEY=FILE...");
  const std::string export_dir = argv[1], signature_name = argv[2], output_dir = argv[3];

  tensorflow::SavedModelBundle bundle;
  absl::Status status = tensorflow::LoadSavedModel(
      tensorflow::SessionOptions(), tensorflow::RunOptions(), export_dir,
      {"serve"}, &bundle);
  if (!status.ok()) return Fail("LoadSavedModel: " + status.ToString());

  const auto& signatures = bundle.meta_graph_def.signature_def();
  auto found = signatures.find(signature_name);
  if (found == signatures.end()) return Fail("no signature " + signature_name);
  const tensorflow::SignatureDef& signature = found->second;

  std::vector<std::pair<std::string, tensorflow::Tensor>> feeds;
  for (int i = 4; i < argc; ++i) {
    const std::string argument = argv[i];
    const size_t equals = argument.find('=');
    if (equals == std::string::npos) return Fail("expected KEY=FILE, got " + argument);
    const std::string key = argument.substr(0, equals), path = argument.substr(equals + 1);
    auto input = signature.inputs().find(key);
    if (input == signature.inputs().end()) return Fail("the signature has no input " + key);
    std::ifstream stream(path, std::ios::binary);
    std::stringstream buffer;
    buffer << stream.rdbuf();
    tensorflow::TensorProto proto;
    tensorflow::Tensor tensor;
    if (!proto.ParseFromString(buffer.str()) || !tensor.FromProto(proto)) {
      return Fail("cannot read a TensorProto from " + path);
    }
    feeds.emplace_back(input->second.name(), tensor);
  }

  std::vector<std::string> keys, fetches;
  for (const auto& output : signature.outputs()) {
    keys.push_back(output.first);
    fetches.push_back(output.second.name());
  }
  std::vector<tensorflow::Tensor> results;
  status = bundle.session->Run(feeds, fetches, {}, &results);
  if (!status.ok()) return Fail("Session::Run: " + status.ToString());

  for (size_t i = 0; i < keys.size(); ++i) {
    tensorflow::TensorProto proto;
    // Strings (the class names) go field by field: tensor_content holds fixed-width types only.
    if (results[i].dtype() == tensorflow::DT_STRING) {
      results[i].AsProtoField(&proto);
    } else {
      results[i].AsProtoTensorContent(&proto);
    }
    std::ofstream stream(output_dir + "/" + keys[i] + ".pb", std::ios::binary);
    if (!proto.SerializeToOstream(&stream)) return Fail("cannot write output " + keys[i]);
  }
  return 0;
}
