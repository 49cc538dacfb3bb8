// The nn engine in one include.
#ifndef NN_NN_H
#define NN_NN_H
#include "layers.h"
#include "ops.h"
#include "optim.h"
#include "../common/gn_rng.h"
#include "store.h"
#include "tensor.h"
#endif
