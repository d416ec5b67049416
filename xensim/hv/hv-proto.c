/*
 * Framing of the xensim-hvd protocol (see hv-proto.h). Pure functions: no I/O, so the daemon,
 * the libraries and the unit tests share them.
 */
#include "hv-proto.h"

#include <errno.h>
#include <string.h>

int hv_proto_decode(const uint8_t *buf, size_t len, HvMsg *ret_msg, const uint8_t **ret_data)
{
        HvMsg m;

        if (!buf || len < HV_MSG_HEADER_SIZE || len > HV_MSG_MAX)
                return -EBADMSG;
        memcpy(&m, buf, sizeof(m));
        if (m.n_data > HV_MSG_MAX_DATA)
                return -EBADMSG;
        if ((uint64_t)HV_MSG_HEADER_SIZE + 4u * (uint64_t)m.n_data != len)
                return -EBADMSG;
        *ret_msg = m;
        *ret_data = buf + HV_MSG_HEADER_SIZE;
        return 0;
}

int hv_proto_op_is_async(uint32_t op)
{
        return op == HV_OP_EVT_PEER_CHANGED;
}

int hv_proto_validate_request(const HvMsg *msg)
{
        uint32_t want = 0;

        if (msg->op == 0 || msg->op >= HV_OP_MAX_ || hv_proto_op_is_async(msg->op))
                return -EOPNOTSUPP;
        if (msg->err != 0)
                return -EBADMSG;
        switch (msg->op) {
        case HV_OP_GNT_SHARE:
                if (msg->arg[1] == 0 || msg->arg[1] > HV_PAGES_PER_REQ)
                        return -EBADMSG;
                break;
        case HV_OP_GNT_MAP:
                if (msg->arg[0] == 0 || msg->arg[0] > HV_PAGES_PER_REQ)
                        return -EBADMSG;
                want = 2u * msg->arg[0];
                break;
        default:
                break;
        }
        if (msg->n_data != want)
                return -EBADMSG;
        return 0;
}

uint32_t hv_proto_word(const uint8_t *data, size_t i)
{
        uint32_t w;

        memcpy(&w, data + 4u * i, sizeof(w));
        return w;
}

int hv_proto_encode(const HvMsg *msg, const uint32_t *data, uint8_t *buf, size_t cap)
{
        size_t len = HV_MSG_HEADER_SIZE + 4u * (size_t)msg->n_data;

        if (msg->n_data > HV_MSG_MAX_DATA || len > cap)
                return -EMSGSIZE;
        memcpy(buf, msg, sizeof(*msg));
        if (msg->n_data)
                memcpy(buf + HV_MSG_HEADER_SIZE, data, 4u * (size_t)msg->n_data);
        return (int)len;
}
