/* Learning-rate policies, as Caffe defines them (iter counts from 0). */
#include <math.h>

#include "solvers/solver.h"

double dl_lr_at(const dl_solver_param *p, int64_t iter) {
  double base = p->base_lr, it = (double)iter, gamma = p->gamma, power = p->power;
  switch ((dl_lr_policy)p->lr_policy) {
  case DL_LR_FIXED: return base;
  case DL_LR_STEP: return base * pow(gamma, floor(it / p->stepsize));
  case DL_LR_EXP: return base * pow(gamma, it);
  case DL_LR_INV: return base * pow(1.0 + gamma * it, -power);
  case DL_LR_MULTISTEP: {
    int passed = 0;
    while (passed < p->stepvalue.n && iter >= p->stepvalue.v[passed]) passed++;
    return base * pow(gamma, passed);
  }
  case DL_LR_POLY: return base * pow(fmax(0.0, 1.0 - it / p->max_iter), power);
  case DL_LR_SIGMOID: return base / (1.0 + exp(-gamma * (it - p->stepsize)));
  }
  return base;
}
