// A tiny in-process stand-in for the Pulumi engine's gRPC `Engine` service: it accepts Log calls and records
// them, so tests can check what provider code logged through pulumi.log (e.g. that no secret leaks).
import * as grpc from "@grpc/grpc-js";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as engrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engproto from "@pulumi/pulumi/proto/engine_pb";

export type LogSeverityName = "debug" | "info" | "warning" | "error";

export interface EngineLog {
  severity: LogSeverityName;
  message: string;
  urn: string;
}

export interface FakeEngine {
  /** host:port to hand to the provider host (argv) and, optionally, PULUMI_NODEJS_ENGINE. */
  address: string;
  logs(): EngineLog[];
  close(): Promise<void>;
}

const severityNames: Record<engproto.LogSeverity, LogSeverityName> = {
  [engproto.LogSeverity.DEBUG]: "debug",
  [engproto.LogSeverity.INFO]: "info",
  [engproto.LogSeverity.WARNING]: "warning",
  [engproto.LogSeverity.ERROR]: "error",
};

export async function startFakeEngine(): Promise<FakeEngine> {
  const records: EngineLog[] = [];
  const server = new grpc.Server();
  const impl: grpc.UntypedServiceImplementation = {
    log(
      call: grpc.ServerUnaryCall<engproto.LogRequest, emptyproto.Empty>,
      cb: grpc.sendUnaryData<emptyproto.Empty>,
    ) {
      const req = call.request;
      records.push({
        severity: severityNames[req.getSeverity()],
        message: req.getMessage(),
        urn: req.getUrn(),
      });
      cb(null, new emptyproto.Empty());
    },
    getRootResource(
      _call: grpc.ServerUnaryCall<engproto.GetRootResourceRequest, engproto.GetRootResourceResponse>,
      cb: grpc.sendUnaryData<engproto.GetRootResourceResponse>,
    ) {
      cb(null, new engproto.GetRootResourceResponse());
    },
    setRootResource(
      _call: grpc.ServerUnaryCall<engproto.SetRootResourceRequest, engproto.SetRootResourceResponse>,
      cb: grpc.sendUnaryData<engproto.SetRootResourceResponse>,
    ) {
      cb(null, new engproto.SetRootResourceResponse());
    },
    startDebugging(
      _call: grpc.ServerUnaryCall<engproto.StartDebuggingRequest, emptyproto.Empty>,
      cb: grpc.sendUnaryData<emptyproto.Empty>,
    ) {
      cb(null, new emptyproto.Empty());
    },
    requirePulumiVersion(
      _call: grpc.ServerUnaryCall<
        engproto.RequirePulumiVersionRequest,
        engproto.RequirePulumiVersionResponse
      >,
      cb: grpc.sendUnaryData<engproto.RequirePulumiVersionResponse>,
    ) {
      cb(null, new engproto.RequirePulumiVersionResponse());
    },
  };
  server.addService(engrpc.EngineService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    logs: () => [...records],
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
