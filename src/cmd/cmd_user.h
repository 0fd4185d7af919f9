/* `fedgate user ...`: the local-user commands of the table (cmd.c). */
#ifndef FG_CMD_USER_H
#define FG_CMD_USER_H

#include "cmd_types.h"

extern const struct cmd_param p_user_jid[], p_user_password[], p_user_list[], p_user_set[];
void cmd_user_add(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud);
void cmd_user_passwd(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud);
void cmd_user_set(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud);
void cmd_user_remove(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		     void *ud);
void cmd_user_get(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply, void *ud);
void cmd_user_list(struct cmd_env *env, const struct cmd_request *req, cmd_reply_fn reply,
		   void *ud);

#endif
