from common import *
from sklearn.feature_extraction.text import TfidfVectorizer
C=77
tex=[l.rstrip('\n') for l in open('ex.txt')]; tdev=[l.rstrip('\n') for l in open('dev.txt')]
desc=[l.rstrip('\n') for l in open('desc.txt')]
def ev(P): return (P.argmax(1)==ydev).mean()*100
# examples + description
Xq=np.concatenate([exq[:,12,:],dq[:,12,:]]); Xp=np.concatenate([exp_[:,12,:],dp[:,12,:]]); y=np.concatenate([ytr,np.arange(C)])
mq=Xq.mean(0); E=nrm(Xq-mq); Ed=nrm(devq[:,12,:]-mq); Ep=nrm(Xp-Xp.mean(0))
S=Ed@E.T; KN=np.zeros((len(Ed),C))
for c in range(C):
    s=np.sort(S[:,y==c],1)[:,::-1][:,:3]; KN[:,c]=s.mean(1)
vec=TfidfVectorizer(analyzer='char_wb',ngram_range=(3,5),sublinear_tf=True)
T=vec.fit_transform(tex+desc); Td=vec.transform(tdev); LS=(Td@T.T).toarray()
LX=np.zeros((len(Ed),C))
for c in range(C): LX[:,c]=LS[:,y==c].max(1)
W,b=head_train(E,y,C); H1=softmax(Ed@W.T+b)
W2,b2=head_train(np.concatenate([E,Ep]),np.concatenate([y,y]),C); H2=softmax(Ed@W2.T+b2)
print('knn',ev(KN),'lex',ev(LX),'head1',ev(H1),'head2',ev(H2))
for hw in [0.3,0.5,1.0,2.0]:
    for lw in [0.2,0.3,0.5]:
        print(hw,lw,'one view',f'{ev(KN+hw*H1+lw*LX):.2f}','two views',f'{ev(KN+hw*H2+lw*LX):.2f}')
