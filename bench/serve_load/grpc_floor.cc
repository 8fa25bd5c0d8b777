// The gRPC floor of bench/serve_load: a bare grpc++ server whose ModelInfer answers every call
// with the same ModelInferResponse, of the size Outpost's answer has for the same request (one
// FP32 output of `rows` values, raw_output_contents). Prints "grpc listening on HOST:PORT"
// and serves until killed.
//
// usage: serve_load_grpc_floor HOST:PORT MODEL OUTPUT ROWS
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "serve/inference.grpc.pb.h"

namespace {

class FloorService final : public inference::GRPCInferenceService::Service {
 public:
  explicit FloorService(inference::ModelInferResponse answer) : answer_(std::move(answer)) {}
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest*,
                          inference::ModelInferResponse* response) override {
    *response = answer_;
    return grpc::Status::OK;
  }

 private:
  const inference::ModelInferResponse answer_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s HOST:PORT MODEL OUTPUT ROWS\n", argv[0]);
    return 2;
  }
  const int rows = std::atoi(argv[4]);
  inference::ModelInferResponse answer;
  answer.set_model_name(argv[2]);
  answer.set_model_version("1");
  auto* out = answer.add_outputs();
  out->set_name(argv[3]);
  out->set_datatype("FP32");
  out->add_shape(rows);
  answer.add_raw_output_contents(std::string(static_cast<size_t>(rows) * 4, '\x01'));

  FloorService service(std::move(answer));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "cannot listen on %s\n", argv[1]);
    return 1;
  }
  std::printf("grpc listening on port %d\n", port);
  std::fflush(stdout);
  server->Wait();
  return 0;
}
