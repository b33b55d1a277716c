/* The umbrella header of libcoapkit: include this one. */
#ifndef COAPKIT_COAPKIT_H
#define COAPKIT_COAPKIT_H

#include "coapkit/addr.h"
#include "coapkit/cf.h"
#include "coapkit/client.h"
#include "coapkit/ctx.h"
#include "coapkit/dtls.h"
#include "coapkit/error.h"
#include "coapkit/export.h"
#include "coapkit/link.h"
#include "coapkit/loop.h"
#include "coapkit/msg.h"
#include "coapkit/opt.h"
#include "coapkit/server.h"
#include "coapkit/uri.h"
#include "coapkit/version.h"

#endif
