/* export.h - Client.ExportModel (export.c): a succeeded job's trained
 * model as safetensors or ONNX, written once to its job dir and streamed.
 */
#ifndef SATURND_EXPORT_H
#define SATURND_EXPORT_H

#include "coord.h"

#include "saturn.pb-c.h"

/* Answers the ExportModel call for job j (found by the dispatcher). */
void coord_export_model(struct coord *c, struct job *j, struct rpc_call *call,
                        const Saturn__V1__ExportModelRequest *req);

#endif
