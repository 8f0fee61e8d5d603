/* rpc_dispatch.h - saturnd's gRPC method table (rpc_dispatch.c), handed to
 * rpc_server_start with the coordinator as user data. */
#ifndef SATURND_RPC_DISPATCH_H
#define SATURND_RPC_DISPATCH_H

#include "coord.h"

extern const struct rpc_method coord_methods[];
/* rpc_server_opts.land for coord_methods (ud: the struct coord). */
void coord_land(struct rpc_land *land, const ProtobufCMessage *req, void *ud);
extern const size_t coord_nmethods;

#endif
