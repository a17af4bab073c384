/*
 * The model interface driven by edgeprune's benchmark programs and the serial server (ep_serial.c).
 *
 * A backend's generated model provides these five functions (directly or through a few lines of
 * glue). All buffers belong to the caller; the model keeps its recurrent state internally (one
 * stream), so nothing here allocates.
 */
#ifndef EP_MODEL_H
#define EP_MODEL_H

#define EP_MODEL_API_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

const char *ep_model_name(void); /* short id printed in reports, no spaces */
int ep_model_inputs(void);       /* features per step */
int ep_model_classes(void);      /* floats per output (logits, or a regressor's values) */
void ep_model_reset(void);       /* zero the recurrent state */
/* one step: x [inputs] -> logits [classes] after this step; the state advances */
void ep_model_step(const float *x, float *logits);
/* a whole sequence from a zero state: x [steps][inputs] -> the output [classes] after the last step
 * (also for models with an output at every step: the benchmark compares and times the last one) */
void ep_model_run(const float *x, int steps, float *logits);

#ifdef __cplusplus
}
#endif

#endif
